/** The WebAssembly SIMD Adam kernel must give the scalar float32 loop's bits exactly. */
import { describe, expect, it } from 'vitest';
import { AdamShardOptimizer } from '../../src/optim/adam.js';
import { WasmAdamKernel } from '../../src/optim/wasm/adam-kernel.js';
import { mulberry32 } from '../../src/util/random.js';

describe('WebAssembly Adam kernel', () => {
  it('is built and loads', () => {
    expect(WasmAdamKernel.create()).toBeInstanceOf(WasmAdamKernel);
  });

  for (const [name, weightDecay] of [['adam', 0], ['adamw', 0.004]] as const) {
    it(`${name}: bitwise equal to the scalar loop over 20 steps on an unaligned shard`, () => {
      const n = 5003;
      const [from, to] = [37, 4998];
      const random = mulberry32(11);
      const shared = () => new Float32Array(new SharedArrayBuffer(n * 4));
      const [pa, ga, ma, va] = [shared(), shared(), shared(), shared()];
      const [pb, gb, mb, vb] = [shared(), shared(), shared(), shared()];
      for (let i = 0; i < n; i++) pa[i] = pb[i] = random() - 0.5;
      const optimizer =
        name === 'adam'
          ? new AdamShardOptimizer('adam', { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 })
          : new AdamShardOptimizer('adamw', { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay });
      const corrections = (step: number) => {
        const b1 = Math.fround(0.9);
        const b2 = Math.fround(0.999);
        let p1 = b1;
        let p2 = b2;
        for (let s = 1; s < step; s++) {
          p1 = Math.fround(p1 * b1);
          p2 = Math.fround(p2 * b2);
        }
        return [Math.fround(1 - p1), Math.fround(1 - p2)] as const;
      };
      for (let step = 1; step <= 20; step++) {
        for (let i = 0; i < n; i++) ga[i] = gb[i] = (random() - 0.5) * 10 ** Math.floor(random() * 8 - 6);
        optimizer.update(pa, ga, [ma, va], from, to, step);
        const [c1, c2] = corrections(step);
        optimizer.scalarUpdate(pb, gb, mb, vb, from, to, c1, c2);
      }
      for (const [a, b] of [[pa, pb], [ma, mb], [va, vb]] as const) {
        expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      }
      // Outside the shard nothing moved, and inside it did.
      expect(ma[from - 1]).toBe(0);
      expect(ma[to]).toBe(0);
      expect(ma[from]).not.toBe(0);
    });
  }
});
