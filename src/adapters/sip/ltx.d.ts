/**
 * Types for the parts of ltx (an untyped generic XML library) that the PIDF codec uses: the
 * streaming tokenizer, so the codec can check nesting and resolve namespaces itself, and the
 * escapers.
 */
declare module 'ltx' {
  export function escapeXML(s: string): string;
  export function escapeXMLText(s: string): string;
}

declare module 'ltx/src/parsers/ltx.js' {
  import type { EventEmitter } from 'node:events';

  /** Emits `startElement(name, attrs)`, `endElement(name)` and `text(unescaped)`; throws on a bad entity. */
  export default class SaxLtx extends EventEmitter {
    write(data: string): void;
    end(data?: string): void;
  }
}
