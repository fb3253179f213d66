/** A captured state does not change when training goes on (checkpoints are encoded later). */
import { describe, expect, it } from 'vitest';
import { ParamLayout } from '../../src/model/param-layout.js';
import { createOptimizer } from '../../src/optim/create-optimizer.js';
import { parseRunConfig } from '../../src/config/load.js';
import { RunState } from '../../src/train/run-state.js';
import { allocateTrainingBuffers, TrainingViews } from '../../src/train/shared-state.js';
import { zeroPhaseTimes } from '../../src/train/replica-protocol.js';

describe('RunState.capture', () => {
  it("copies the partial epoch's sums: adding to them afterwards leaves the capture as it was", () => {
    const config = parseRunConfig({ name: 'x', model: { inputShape: [1], layers: [{ type: 'dense', units: 1 }] }, data: 'linear', loss: 'mse', optimizer: 'sgd', metrics: ['mae'], training: { epochs: 1, batchSize: 8 } });
    const layout = new ParamLayout([{ name: 'k', shape: [1, 1], offset: 0, size: 1 }, { name: 'b', shape: [1], offset: 1, size: 1 }]);
    const optimizer = createOptimizer(config.optimizer);
    const views = new TrainingViews(allocateTrainingBuffers(layout.length, 1, optimizer.stateNames.length, false), layout.length);
    const state = new RunState(1);
    state.position.stepInEpoch = 2;
    state.epochProgress = { ...state.freshEpochProgress(), samples: 16, lossSum: 8, metricSums: [10], times: [zeroPhaseTimes()] };
    const captured = state.capture({ config, topology: {}, layout, optimizer, replicas: 1 }, views);
    const before = JSON.stringify(captured.history);
    // The next segment of steps.
    state.epochProgress.metricSums[0]! += 30;
    state.epochProgress.times.push(zeroPhaseTimes());
    state.epochProgress.times[0]!.compute += 1;
    expect(JSON.stringify(captured.history)).toBe(before);
    expect(captured.history).toEqual([expect.objectContaining({ event: 'partial-epoch', epoch: 1, samples: 16, lossSum: 8, metricSums: [10], times: [zeroPhaseTimes()] })]);
  });
});
