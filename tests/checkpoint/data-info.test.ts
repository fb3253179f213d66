import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_PROTO_FILE, decodeCheckpoint, encodeCheckpoint } from '../../src/checkpoint/format.js';
import { describeCheckpoint, formatCheckpoint } from '../../src/checkpoint/inspect.js';
import { assertResumable } from '../../src/checkpoint/resume.js';
import { ParamLayout } from '../../src/model/param-layout.js';
import { createOptimizer } from '../../src/optim/create-optimizer.js';
import { UserError } from '../../src/errors.js';
import { checkpointErrorOf, makeState } from './fixtures.js';

const INFO = { classNames: ['cat', 'dog'], featureColumns: ['a', 'color'], labelColumn: 'kind', categories: { color: ['blue', 'red'] } };

/** Reads field data_info_json of an encoded checkpoint with protobufjs, independently of the decoder under test. */
function rawDataInfo(bytes: Uint8Array): string {
  const root = protobuf.loadSync(CHECKPOINT_PROTO_FILE);
  const message = root.lookupType('ringtrain.checkpoint.Checkpoint').decode(bytes.subarray(32)) as unknown as { dataInfoJson: string };
  return message.dataInfoJson;
}

describe('data info in checkpoints', () => {
  it('round-trips as field data_info_json and is shown by inspect', () => {
    const bytes = encodeCheckpoint({ ...makeState(), dataInfo: INFO });
    expect(JSON.parse(rawDataInfo(bytes))).toEqual(INFO);
    const state = decodeCheckpoint(bytes, 'x.rtckpt');
    expect(state.dataInfo).toEqual(INFO);
    const text = formatCheckpoint(describeCheckpoint(state, 'x.rtckpt'));
    expect(text).toContain('  classes    2: cat, dog\n');
    expect(text).toContain('  features   a, color; label kind\n');
    expect(text).toContain('  categories color: blue=0, red=1\n');
  });

  it('is absent (an empty field) in a checkpoint without it, which still reads', () => {
    const bytes = encodeCheckpoint(makeState());
    expect(rawDataInfo(bytes)).toBe('');
    expect(decodeCheckpoint(bytes, 'x.rtckpt').dataInfo).toBeUndefined();
  });

  it('is validated on read', async () => {
    const bytes = encodeCheckpoint({ ...makeState(), dataInfo: { classNames: [1, 2] } as unknown as typeof INFO });
    const error = await checkpointErrorOf(() => decodeCheckpoint(bytes, 'x.rtckpt'));
    expect(error.message).toBe('x.rtckpt: malformed payload: the data info is malformed: classNames is not an array of strings');
  });

  it('lets a run resume over the same data (keys in any order) and refuses other categories', () => {
    const state = makeState();
    const decoded = decodeCheckpoint(encodeCheckpoint({ ...state, dataInfo: INFO }), 'x.rtckpt');
    // The CSV source builds the object in another key order than the decoder: the comparison must not care.
    const fromSource = { featureColumns: INFO.featureColumns, labelColumn: INFO.labelColumn, categories: INFO.categories, classNames: INFO.classNames };
    expect(JSON.stringify(decoded.dataInfo)).not.toBe(JSON.stringify(fromSource));
    const layout = new ParamLayout(state.layout);
    const optimizer = createOptimizer({ name: 'adam', learningRate: 0.001 });
    const config = { ...decoded.config };
    expect(() => assertResumable('x.rtckpt', decoded, config, layout, optimizer, fromSource)).not.toThrow();
    const other = { ...fromSource, categories: { color: ['blue', 'green', 'red'] } };
    let error: unknown;
    try {
      assertResumable('x.rtckpt', decoded, config, layout, optimizer, other);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(
      'cannot resume from x.rtckpt: the data\'s classes, columns or categories differ: the checkpoint has {"categories":{"color":["blue","red"]},"classNames":["cat","dog"],"featureColumns":["a","color"],"labelColumn":"kind"}, the data {"categories":{"color":["blue","green","red"]},"classNames":["cat","dog"],"featureColumns":["a","color"],"labelColumn":"kind"}',
    );
  });

  it('inspect says when the data was passed in code (a config without a data section)', () => {
    const state = makeState();
    const { data: _data, ...config } = state.config;
    const description = describeCheckpoint({ ...state, config: config as typeof state.config }, 'x.rtckpt');
    expect(description.config.data).toBe('passed in code (the config has no data section)');
  });
});
