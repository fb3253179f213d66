/**
 * Reduce-on-plateau against a trace of Keras's ReduceLROnPlateau.on_epoch_end worked by hand.
 */
import { describe, expect, it } from 'vitest';
import { reduceLrOnPlateauSchema, ReduceLrOnPlateau } from '../../src/optim/reduce-lr-on-plateau.js';

describe('reduce-on-plateau', () => {
  it('reduces after patience epochs without improvement, then cools down (Keras)', () => {
    const plateau = new ReduceLrOnPlateau(reduceLrOnPlateauSchema.parse({ monitor: 'val_loss', factor: 0.5, patience: 2, cooldown: 2, minDelta: 0.01 }));
    let rate = 0.1;
    const trace: [number, boolean, number, number, number][] = [];
    for (const loss of [1.0, 0.9, 0.895, 0.9, 0.95, 0.96, 0.97, 0.5]) {
      const reduced = plateau.onEpochEnd(loss, rate);
      if (reduced) rate = 0.1 * plateau.state.scale;
      trace.push([loss, reduced, plateau.state.wait, plateau.state.cooldownCounter, plateau.state.best]);
    }
    expect(trace).toEqual([
      [1.0, false, 0, 0, 1.0], // improves on Infinity
      [0.9, false, 0, 0, 0.9],
      [0.895, false, 1, 0, 0.9], // not better by minDelta
      [0.9, true, 0, 2, 0.9], // wait reaches patience: halve, cooldown 2
      [0.95, false, 0, 1, 0.9], // in cooldown: counts down, wait stays 0
      // Keras decrements first and then asks whether it is in cooldown: the last cooldown epoch counts.
      [0.96, false, 1, 0, 0.9],
      [0.97, true, 0, 2, 0.9],
      [0.5, false, 0, 1, 0.5],
    ]);
    expect(plateau.state.scale).toBe(0.25);
    expect(rate).toBeCloseTo(0.025, 12);
  });

  it('maximizes accuracies in mode auto and stops reducing at minLr', () => {
    const plateau = new ReduceLrOnPlateau(reduceLrOnPlateauSchema.parse({ monitor: 'val_accuracy', factor: 0.1, patience: 1, minLr: 0.01 }));
    expect(plateau.state.best).toBe(-Infinity);
    expect(plateau.onEpochEnd(0.5, 0.1)).toBe(false);
    expect(plateau.onEpochEnd(0.6, 0.1)).toBe(false);
    expect(plateau.onEpochEnd(0.55, 0.1)).toBe(true);
    expect(plateau.adjustment).toEqual({ scale: 0.1, floor: 0.01 });
    // At minLr already (rates are float32, as Keras's variable): no further reduction; wait keeps counting.
    expect(plateau.onEpochEnd(0.55, Math.fround(0.01))).toBe(false);
    expect(plateau.state.wait).toBe(1);
  });

  it('continues from a saved state, including the initial best that JSON turned into null', () => {
    const spec = reduceLrOnPlateauSchema.parse({ monitor: 'loss', patience: 1 });
    const resumed = new ReduceLrOnPlateau(spec, JSON.parse(JSON.stringify({ best: Infinity, wait: 0, cooldownCounter: 0, scale: 1 })));
    expect(resumed.state.best).toBe(Infinity);
    const saved = new ReduceLrOnPlateau(spec, { best: 0.3, wait: 0, cooldownCounter: 0, scale: 0.1 });
    expect(saved.onEpochEnd(0.31, 0.01)).toBe(true);
    expect(saved.state.scale).toBeCloseTo(0.01, 15);
  });
});
