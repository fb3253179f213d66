/**
 * The bridge between the replica threads of a process and its main thread, which alone talks
 * to other processes. A round: every local replica copies its part into the shared bridge
 * buffer and deposits (a counter grows); the main thread, seeing all deposits, all-reduces the
 * round's length of the buffer with the other processes and marks the round finished; each
 * replica then copies its part of the world sum back. Rounds are numbered the same on every
 * replica (each makes the same calls in the same order), so counters are all that is needed.
 *
 * The last element of the bridge buffer is the round's flag count: a replica that raises a
 * flag (any()) adds one to a word, and the main thread reduces it with the buffer.
 */
import { BridgeWord, type ControlBlock } from './control-block.js';

/** Replica side: synchronous, like the rest of a step. */
export class BridgeClient {
  private rounds = 0;
  private readonly buffer: Float32Array;

  constructor(
    private readonly control: ControlBlock,
    bridge: SharedArrayBuffer,
  ) {
    this.buffer = new Float32Array(bridge);
  }

  /** The largest buffer a round can carry (the flag count takes the last element). */
  get capacity(): number {
    return this.buffer.length - 1;
  }

  /**
   * Contributes buf[from, to) (this replica's part of a buffer of `length` elements) and
   * `flag`; returns after the world's sum of that range is back in buf[from, to), with whether
   * any replica of the world raised its flag.
   */
  allReduceRange(buf: Float32Array, from: number, to: number, length: number, step: number, flag: boolean): boolean {
    if (length > this.capacity) throw new RangeError(`bridge round of ${length} floats exceeds its capacity of ${this.capacity}`);
    const words = this.control.words;
    const round = ++this.rounds;
    this.buffer.set(buf.subarray(from, to), from);
    if (flag) Atomics.add(words, BridgeWord.FLAGS, 1);
    Atomics.store(words, BridgeWord.LENGTH, length);
    Atomics.store(words, BridgeWord.STEP, step);
    Atomics.add(words, BridgeWord.DEPOSITED, 1);
    Atomics.notify(words, BridgeWord.DEPOSITED);
    this.control.waitUntilAtLeast(BridgeWord.FINISHED, round, `the other processes in the all-reduce of step ${step + 1}`);
    buf.set(this.buffer.subarray(from, to), from);
    return this.buffer[this.capacity]! > 0;
  }
}

/** What the main thread reduces with: a ProcessGroup, seen through the one call it needs. */
export interface WorldAllReduce {
  allReduce(buf: Float32Array, step: number): Promise<void>;
}

/** Main-thread side: serves rounds until `until` settles or the control block is aborted. */
export class BridgeServer {
  private readonly buffer: Float32Array;

  constructor(
    private readonly control: ControlBlock,
    bridge: SharedArrayBuffer,
    private readonly parties: number,
    private readonly world: WorldAllReduce,
  ) {
    this.buffer = new Float32Array(bridge);
  }

  /** Serves rounds while `running()` holds; rejects when a world all-reduce fails. */
  async serve(running: () => boolean): Promise<void> {
    const words = this.control.words;
    const flagIndex = this.buffer.length - 1;
    while (running() && !this.control.aborted) {
      // The counters live as long as the replicas' memory; a server may serve only some calls.
      const served = Atomics.load(words, BridgeWord.FINISHED);
      const awaited = (served + 1) * this.parties;
      const deposited = Atomics.load(words, BridgeWord.DEPOSITED);
      if (deposited < awaited) {
        // Wake on a deposit, and at least every 50 ms to see the end of the call or an abort.
        const wait = Atomics.waitAsync(words, BridgeWord.DEPOSITED, deposited, 50);
        if (wait.async) await wait.value;
        continue;
      }
      const length = Atomics.load(words, BridgeWord.LENGTH);
      const step = Atomics.load(words, BridgeWord.STEP);
      this.buffer[flagIndex] = Atomics.exchange(words, BridgeWord.FLAGS, 0);
      // The flag count rides in the element after the round's values.
      if (length < flagIndex) this.buffer[length] = this.buffer[flagIndex]!;
      const view = this.buffer.subarray(0, length + 1);
      await this.world.allReduce(view, step);
      this.buffer[flagIndex] = view[length]!;
      Atomics.store(words, BridgeWord.FINISHED, served + 1);
      Atomics.notify(words, BridgeWord.FINISHED);
    }
  }
}
