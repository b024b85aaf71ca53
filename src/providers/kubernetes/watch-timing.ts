/** A Node watch asks the server to end it after this long, so a silently dead connection is noticed. */
export const NODE_WATCH_SECONDS = 50;
