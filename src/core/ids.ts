import { randomBytes, randomUUID } from 'node:crypto';

/** The one id generator: event ids are UUIDs from the platform's CSPRNG. */
export function newEventId(): string {
  return randomUUID();
}

/** URL- and token-safe random string of `bytes` random bytes (SIP branch ids, tags, stanza ids). */
export function randomToken(bytes = 12): string {
  return randomBytes(bytes).toString('base64url');
}
