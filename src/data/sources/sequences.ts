/**
 * Seeded sequence-classification tasks for recurrent and attention models; nothing to download,
 * the data follows from the run seed.
 *  - majority: 16 tokens drawn uniformly from 0..9; the label is the token that occurs most
 *    often (draws whose most frequent count is tied are redrawn). A model has to count.
 *  - recall (associative recall): 5 key/value pairs then a query, 11 tokens: keys are 5 distinct
 *    letters from 10 (tokens 10..19), values digits 0..9, the query one of the keys; the label
 *    is the digit paired with the query. A model has to look back to a position it cannot know
 *    in advance, what attention does.
 * Features are token ids [length] (floats, for an embedding layer), labels the class [1] of 10.
 * Train and test are independent draws (split 0 and 1) from streams mixed from the seed.
 */
import { mixSeed, mulberry32 } from '../../util/random.js';

export const SEQUENCE_TASKS = ['majority', 'recall'] as const;
export type SequenceTask = (typeof SEQUENCE_TASKS)[number];

export interface SequenceData {
  features: Float32Array;
  labels: Float32Array;
  /** Tokens per sequence. */
  length: number;
  /** Distinct tokens (an embedding's inputDim). */
  vocabulary: number;
  classes: number;
}

export const SEQUENCE_DEFAULT_SAMPLES = 10_000;
/** Test draws: a fifth of the train samples. */
export const SEQUENCE_TEST_SHARE = 0.2;

const MAJORITY_LENGTH = 16;
const RECALL_PAIRS = 5;
const DIGITS = 10;
const LETTERS = 10;
/** Mixed into the run seed so the data does not reuse the weights' or sampler's streams. */
const SEQUENCE_STREAM = 0x736571; // "seq"

export function sequenceShape(task: SequenceTask): { length: number; vocabulary: number; classes: number } {
  return task === 'majority'
    ? { length: MAJORITY_LENGTH, vocabulary: DIGITS, classes: DIGITS }
    : { length: 2 * RECALL_PAIRS + 1, vocabulary: DIGITS + LETTERS, classes: DIGITS };
}

/** `samples` sequences of `task`; `split` 0 is the train draw, 1 the test draw. */
export function sequenceData(task: SequenceTask, samples: number, seed: number, split: 0 | 1): SequenceData {
  const { length, vocabulary, classes } = sequenceShape(task);
  const random = mulberry32(mixSeed(seed, SEQUENCE_STREAM, SEQUENCE_TASKS.indexOf(task), split));
  const draw = (n: number) => Math.floor(random() * n);
  const features = new Float32Array(samples * length);
  const labels = new Float32Array(samples);
  const counts = new Int32Array(DIGITS);
  for (let s = 0; s < samples; s++) {
    const row = features.subarray(s * length, (s + 1) * length);
    if (task === 'majority') {
      for (;;) {
        counts.fill(0);
        for (let i = 0; i < length; i++) counts[(row[i] = draw(DIGITS))]!++;
        const top = Math.max(...counts);
        if (counts.filter((c) => c === top).length === 1) {
          labels[s] = counts.indexOf(top);
          break;
        }
      }
    } else {
      // Five distinct letters (a partial Fisher-Yates shuffle), each with a digit.
      const letters = Array.from({ length: LETTERS }, (_, i) => i);
      for (let i = 0; i < RECALL_PAIRS; i++) {
        const j = i + draw(LETTERS - i);
        [letters[i], letters[j]] = [letters[j]!, letters[i]!];
        row[2 * i] = DIGITS + letters[i]!;
        row[2 * i + 1] = draw(DIGITS);
      }
      const asked = draw(RECALL_PAIRS);
      row[length - 1] = row[2 * asked]!;
      labels[s] = row[2 * asked + 1]!;
    }
  }
  return { features, labels, length, vocabulary, classes };
}
