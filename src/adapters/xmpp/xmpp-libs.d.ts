/**
 * Types for the untyped xmpp.js packages, limited to what the adapter and its tests use.
 * Private members (`_onData`, `_detachParser`, …) are typed because stream-guard.ts replaces
 * them to fix the UTF-8 split-read bug and contain parser exceptions.
 */
declare module '@xmpp/xml' {
  import type { EventEmitter } from 'node:events';

  export interface Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<Element | string>;
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    getNS(): string | undefined;
    toString(): string;
  }

  export type Child = Element | string | undefined | null;

  interface Xml {
    (name: string, attrs?: Record<string, string | undefined> | null, ...children: Array<Child | Child[]>): Element;
    Element: new (name: string, attrs?: Record<string, string | undefined>) => Element;
    Parser: new () => EventEmitter & { write(data: string): void };
    escapeXML(s: string): string;
  }

  const xml: Xml;
  export default xml;
}

declare module '@xmpp/component-core' {
  import type { EventEmitter } from 'node:events';
  import type { Element } from '@xmpp/xml';

  /** The parts of @xmpp/connection's Connection that the adapter touches. */
  export interface ConnectionEntity extends EventEmitter {
    status: string;
    timeout: number;
    socket: import('node:net').Socket | null;
    parser: (EventEmitter & { write(data: string): void }) | null;
    options: { service?: string; domain?: string };
    connect(service: string): Promise<void>;
    open(options: { domain: string; lang?: string; timeout?: number }): Promise<Element>;
    send(element: Element): Promise<void>;
    stop(): Promise<unknown>;
    _onData(data: Buffer): void;
    _onParserError(error: Error): void;
    _detachParser(): void;
  }

  export class Component extends (class {} as new () => ConnectionEntity) {
    constructor(options: { service: string; domain: string });
    authenticate(streamId: string, secret: string): Promise<void>;
  }
}

declare module '@xmpp/client' {
  import type { ConnectionEntity } from '@xmpp/component-core';
  import type { Element } from '@xmpp/xml';

  export interface XmppClient extends ConnectionEntity {
    jid: { toString(): string; local: string; domain: string; resource: string } | null;
    start(): Promise<unknown>;
    reconnect: { stop(): void };
  }

  export function client(options: {
    service: string;
    domain: string;
    username?: string;
    password?: string;
    resource?: string;
  }): XmppClient;
  export const xml: (name: string, attrs?: Record<string, string | undefined> | null, ...children: Array<Element | string>) => Element;
}
