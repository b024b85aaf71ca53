/**
 * A nock reply that never comes: the request hangs until the client gives up, as a token
 * PUT does behind an IMDSv2 hop limit. Use it rather than `.delay(ms)` past the client's
 * timeout: on a loaded machine a stalled event loop can let a delayed reply land before the
 * client's own timer fires, and the test then sees an answer instead of a timeout.
 */
export function noReply(): Promise<never> {
  return new Promise(() => {});
}
