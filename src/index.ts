/** The ringtrain library: train TensorFlow.js models on all cores by synchronous data parallelism. */
export { train, summarise, type TrainSummary } from './train/run.js';
export { Trainer, type TrainerOptions, type Evaluation } from './train/trainer.js';
export type { TrainingEvent, StartEvent, ProgressEvent, EpochEvent, MetricValues } from './train/events.js';
export type { PhaseTimes, ReduceScatterKind } from './train/replica-protocol.js';
export { loadRunConfig, parseRunConfig, applyOverrides, resolveWorkers, type ConfigOverrides } from './config/load.js';
export type { RunConfig, LayerSpec } from './config/schema.js';
export { loadData, type DataConfig, type LoadedData } from './data/load-data.js';
export { createSharedDataset, sliceDataset, splitValidation, type SharedDataset, type DatasetInit } from './data/dataset.js';
export { epochPermutation, replicaSlice, stepsPerEpoch } from './data/sampler.js';
export { createOptimizer } from './optim/create-optimizer.js';
export type { ShardOptimizer, OptimizerSpec, OptimizerName } from './optim/optimizer.js';
export { ringReduceScatter, ringAllGather, ringAllReduce, directReduceScatter, chunkRange } from './collective/ring.js';
export type { PointToPoint } from './collective/transport.js';
export { ShmRingTransport, allocateShmRing } from './collective/shm-transport.js';
export { ControlBlock, WaitTimeoutError } from './collective/control-block.js';
export { UserError, ConfigError, DataError, TrainingAbortedError } from './errors.js';
export { VERSION } from './version.js';
export { TokenAndPositionEmbedding, MultiHeadSelfAttention, TransformerEncoder } from './model/layers/index.js';
