/**
 * A stage's worker pool, sized once: `size` jobs run at a time and up to `backlog` more wait
 * for a slot. `submit` is the back-pressure: it returns once the job has a place, and waits
 * while there is none. (A stage that hands back its result at once uses `add`, which never
 * waits, and `room`, which is the same wait on its own: add, then wait for room before the
 * next.) Everything is tied to the run's one AbortSignal: once it is aborted, `submit` and
 * `room` fail at once, `add` gives a rejected result, jobs that have not started are dropped
 * (their result rejects with the signal's reason), and running jobs see the signal they were
 * handed. `idle` says when nothing runs or waits any more.
 *
 * The wait lines are FIFOs with constant-time dequeue (an array's shift() is linear, which
 * with a million waiters is most of the CPU).
 */

/** A first-in first-out queue: push and shift in constant (amortised) time. */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Drop the consumed prefix once it is most of the array.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  *drain(): Generator<T> {
    for (let item; (item = this.shift()) !== undefined; ) yield item;
  }
}

/** A submitted job: `done` settles with its result (or the abort reason if it never ran). */
export interface Job<T> {
  done: Promise<T>;
}

type Start = () => void;
interface Waiting {
  start: Start;
  drop: (reason: unknown) => void;
}

export class Pool {
  private running = 0;
  private readonly waiting = new Fifo<Waiting>();
  private readonly submitters = new Fifo<{ ok: () => void; fail: (reason: unknown) => void }>();
  private idlers: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly size: number,
    readonly signal: AbortSignal,
    readonly backlog = size * 4,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool ${name}: size must be a positive integer`);
    signal.addEventListener('abort', () => this.abortAll(), { once: true });
  }

  /** Jobs running or waiting for a slot. */
  get load(): number {
    return this.running + this.waiting.length;
  }

  /** Waits for a place (slot or backlog), then queues `fn`. Fails at once when aborted. */
  async submit<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<Job<T>> {
    while (this.load >= this.size + this.backlog) {
      this.signal.throwIfAborted();
      await new Promise<void>((ok, fail) => this.submitters.push({ ok, fail }));
    }
    this.signal.throwIfAborted();
    return { done: this.enqueue(fn) };
  }

  /**
   * Undefined when there is a place for one more job now; otherwise a wait for one. Throws at
   * once when aborted (the wait fails when the abort comes).
   */
  room(): Promise<void> | undefined {
    this.signal.throwIfAborted();
    if (this.load < this.size + this.backlog) return undefined;
    return new Promise<void>((ok, fail) => this.submitters.push({ ok, fail })).then(() => this.room());
  }

  /** Queues `fn` now, whatever the load (the caller waits on `room`); its result. */
  add<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason as Error);
    return this.enqueue(fn);
  }

  /** Settles once no job runs or waits (after an abort: once the running ones have ended). */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((ok) => this.idlers.push(ok));
  }

  /** Submits `fn` and waits for its result. */
  async run<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return (await this.submit(fn)).done;
  }

  private enqueue<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return new Promise<T>((ok, fail) => {
      const start = () => {
        this.running++;
        let p: Promise<T>;
        try {
          p = fn(this.signal);
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(ok, fail).finally(() => {
          this.running--;
          this.next();
          if (this.running === 0 && this.waiting.length === 0) for (const idle of this.idlers.splice(0)) idle();
        });
      };
      if (this.running < this.size) start();
      else this.waiting.push({ start, drop: fail });
    });
  }

  private next(): void {
    if (this.signal.aborted) return;
    while (this.running < this.size) {
      const w = this.waiting.shift();
      if (!w) break;
      w.start();
    }
    // Room in the backlog again: let one submitter in per free place.
    while (this.submitters.length && this.load < this.size + this.backlog) this.submitters.shift()!.ok();
  }

  private abortAll(): void {
    const reason: unknown = this.signal.reason;
    for (const w of this.waiting.drain()) w.drop(reason);
    for (const s of this.submitters.drain()) s.fail(reason);
  }
}
