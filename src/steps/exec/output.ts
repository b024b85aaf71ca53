import { StringDecoder } from 'node:string_decoder';

/**
 * Splits a child's output into lines for the log, up to `capBytes` of it; past that it only
 * counts what it drops, so a chatty command cannot flood the journal.
 */
export class CappedLines {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  /** Output bytes that went to the log (a line's newline included). */
  private consumed = 0;
  private full = false;
  /** Every byte received. */
  total = 0;

  constructor(
    private readonly emit: (line: string) => void,
    private readonly capBytes: number,
  ) {}

  /** Bytes received but not logged; exact once `end()` has run. */
  get dropped(): number {
    return this.total - this.consumed - Buffer.byteLength(this.partial);
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.full) return;
    const lines = (this.partial + this.decoder.write(chunk)).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) this.take(line, true);
    // A line that never ends is logged cut, so the cap holds for it too.
    if (!this.full && Buffer.byteLength(this.partial) >= this.capBytes - this.consumed) {
      this.take(this.partial, false);
      this.partial = '';
    }
  }

  /** Flushes the last unterminated line. */
  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest && !this.full) this.take(rest, false);
  }

  private take(line: string, terminated: boolean): void {
    if (this.full) return;
    const bytes = Buffer.byteLength(line) + (terminated ? 1 : 0);
    const room = this.capBytes - this.consumed;
    if (bytes <= room) {
      this.emit(line.replace(/\r$/, ''));
      this.consumed += bytes;
      this.full = this.consumed >= this.capBytes;
      return;
    }
    // Cut to the room left, never leaving half a character.
    const kept = Buffer.from(line).subarray(0, room).toString('utf8').replace(/\uFFFD$/, '');
    if (kept) this.emit(kept);
    this.consumed += Buffer.byteLength(kept);
    this.full = true;
  }
}
