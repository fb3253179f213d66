/**
 * TensorBoard's Event and Summary messages, encoded with protobufjs from TensorFlow's own
 * .proto files (proto/tensorboard/, trimmed copies with TensorFlow's field numbers).
 *
 * Scalars are `simple_value`s and histograms `HistogramProto`s: the forms TensorFlow 1's writers
 * used, which TensorBoard reads to this day (it converts them as it loads them). Text is the
 * text plugin's form: a DT_STRING tensor tagged with plugin "text".
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** proto/tensorboard/ from src/report/tensorboard/ (vitest) or dist/report/tensorboard/ (tsc), three levels down. */
export const EVENT_PROTO_FILE = fileURLToPath(new URL('../../../proto/tensorboard/event.proto', import.meta.url));

export const FILE_VERSION = 'brain.Event:2';

const DT_STRING = 7;
const DATA_CLASS_TENSOR = 2;
/** Equal-width buckets of a histogram, as tf.summary.histogram's default. */
export const HISTOGRAM_BUCKETS = 30;

let eventType: protobuf.Type | undefined;

function event(): protobuf.Type {
  if (!eventType) {
    if (!existsSync(EVENT_PROTO_FILE)) throw new Error(`ringtrain is installed incompletely: ${EVENT_PROTO_FILE} is missing`);
    const root = protobuf.loadSync(EVENT_PROTO_FILE);
    root.resolveAll();
    eventType = root.lookupType('tensorboard.Event');
  }
  return eventType;
}

/** One value of a summary (protobufjs's camelCase field names). */
export type SummaryValue = { tag: string } & Record<string, unknown>;

export function encodeEvent(fields: { wallTime: number; step?: number; fileVersion?: string; sourceMetadata?: { writer: string }; values?: SummaryValue[] }): Uint8Array {
  const { values, ...rest } = fields;
  const type = event();
  return type.encode(type.fromObject(values ? { ...rest, summary: { value: values } } : rest)).finish();
}

export function scalarValue(tag: string, value: number): SummaryValue {
  return { tag, simpleValue: value };
}

export function textValue(tag: string, markdown: string): SummaryValue {
  return {
    tag,
    metadata: { pluginData: { pluginName: 'text' }, dataClass: DATA_CLASS_TENSOR },
    tensor: { dtype: DT_STRING, tensorShape: {}, stringVal: [new TextEncoder().encode(markdown)] },
  };
}

/**
 * A histogram of `values` in HISTOGRAM_BUCKETS equal buckets from their min to their max; bucket
 * i counts the values in (limit[i-1], limit[i]] (the first also takes the min). Non-finite values
 * are left out.
 */
export function histogramValue(tag: string, values: ArrayLike<number>): SummaryValue {
  let min = Infinity;
  let max = -Infinity;
  let num = 0;
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    num++;
    sum += v;
    sumSquares += v * v;
  }
  if (num === 0) return { tag, histo: { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [], bucket: [] } };
  const buckets = max > min ? HISTOGRAM_BUCKETS : 1;
  const width = (max - min) / buckets;
  const bucketLimit = Array.from({ length: buckets }, (_, i) => (i === buckets - 1 ? max : min + (i + 1) * width));
  const bucket = new Array<number>(buckets).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    // The bucket whose upper limit is the first at or above v.
    let b = width > 0 ? Math.min(buckets - 1, Math.max(0, Math.ceil((v - min) / width) - 1)) : 0;
    while (b > 0 && v <= bucketLimit[b - 1]!) b--;
    while (b < buckets - 1 && v > bucketLimit[b]!) b++;
    bucket[b]!++;
  }
  return { tag, histo: { min, max, num, sum, sumSquares, bucketLimit, bucket } };
}
