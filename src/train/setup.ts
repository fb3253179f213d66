/**
 * Set-up of a run before any replica starts: the backend, the data arranged into its roles,
 * the model built once on the coordinator from the seed (so the starting weights do not depend
 * on the number of replicas), its parameter layout, the optimizer, and the checks that must
 * fail before the first step.
 */
import * as tf from '@tensorflow/tfjs';
import { assertBackendAvailable, checkReplicasForBackend, resolveBackend, silenceCpuBanner, type BackendName } from '../backend/select-backend.js';
import { resolveWorkers } from '../config/load.js';
import type { RunConfig } from '../config/schema.js';
import { product, splitValidation, type SharedDataset } from '../data/dataset.js';
import type { DataInfo } from '../data/data-info.js';
import { loadData, type LoadedData } from '../data/load-data.js';
import { paramMemoryProblem } from '../model/inspect-layers.js';
import { ConfigError, UserError } from '../errors.js';
import { buildModel } from '../model/build-model.js';
import { checkDataForModel } from '../model/check-data.js';
import { checkModelTrains } from '../model/check-training.js';
import { ParamLayout } from '../model/param-layout.js';
import { hasWeightFiles, tfjsFileHandler } from '../model/tfjs-files.js';
import { createOptimizer } from '../optim/create-optimizer.js';
import type { ShardOptimizer } from '../optim/optimizer.js';
import type { DatasetRole } from './replica-protocol.js';
import { checkPlateauMonitor } from './learning-rate-state.js';

export type RunDatasets = Partial<Record<DatasetRole, SharedDataset>>;

export interface PreparedRun {
  workers: number;
  backend: BackendName;
  datasets: RunDatasets;
  layout: ParamLayout;
  /** The seeded (or given) starting parameters. */
  initialParams: Float32Array;
  /** The starting non-trainable weights (BatchNormalization's moving statistics...). */
  initialNonTrainable: Float32Array;
  outputSize: number;
  /** model.toJSON(null, false), kept for checkpoints. */
  topology: object;
  optimizer: ShardOptimizer;
  /** What checkpoints keep of the data (class names, CSV columns and categories). */
  dataInfo?: DataInfo;
}

export interface SetupOptions {
  data?: LoadedData;
  dataDir?: string;
  initialParams?: Float32Array;
  initialNonTrainable?: Float32Array;
  log?: (line: string) => void;
  /** Processes of the world on this machine (they share its cores). */
  processesOnHost?: number;
}

export async function prepareRun(config: RunConfig, options: SetupOptions): Promise<PreparedRun> {
  const workers = resolveWorkers(config.parallel.workers, options.processesOnHost);
  const backend = await resolveBackend(config.backend);
  await assertBackendAvailable(backend);
  checkReplicasForBackend(backend, workers);
  if (!options.data && !config.data) throw new ConfigError('data', 'missing required field (or pass the data in code: TrainerOptions.data)');
  const data = options.data ?? (await loadData(config.data!, { seed: config.training.seed, dataDir: options.dataDir, log: options.log }));
  const datasets = arrangeDatasets(config, data);
  const train = datasets.train!;
  if (train.size === 0) throw new UserError(`${train.name} has no samples to train on`);

  const roles = ['train', 'validation', 'test'] as const;
  const { layout, initialParams, initialNonTrainable, outputSize, topology } = await initialModel(config, roles.flatMap((r) => datasets[r] ?? []));
  if (options.initialParams) {
    if (options.initialParams.length !== layout.length) {
      throw new Error(`initialParams has ${options.initialParams.length} values, the model has ${layout.length}`);
    }
    initialParams.set(options.initialParams);
  }
  if (options.initialNonTrainable) {
    if (options.initialNonTrainable.length !== initialNonTrainable.length) {
      throw new Error(`initialNonTrainable has ${options.initialNonTrainable.length} values, the model has ${initialNonTrainable.length}`);
    }
    initialNonTrainable.set(options.initialNonTrainable);
  }
  checkMonitor('checkpoint.monitor', config.checkpoint.monitor, config, datasets.validation !== undefined);
  checkMonitor('training.earlyStopping.monitor', config.training.earlyStopping?.monitor, config, datasets.validation !== undefined);
  checkPlateauMonitor(config, datasets.validation !== undefined);
  // A topology file's size is known only now; before any shared buffer or replica is allocated.
  const tooBig = paramMemoryProblem(layout.length, workers, config.optimizer.name);
  if (tooBig) throw new ConfigError('topology' in config.model ? 'model.topology' : 'model.layers', tooBig);
  return { workers, backend, datasets, layout, initialParams, initialNonTrainable, outputSize, topology, optimizer: createOptimizer(config.optimizer), ...(data.info ? { dataInfo: data.info } : {}) };
}

/** Builds the model once on the coordinator (cpu backend) from the seed: starting weights do not depend on N. */
async function initialModel(config: RunConfig, datasets: SharedDataset[]) {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  silenceCpuBanner();
  try {
    // A model.json with its weight files beside it starts from those weights (warm start).
    const model =
      'topology' in config.model && hasWeightFiles(config.model.topology)
        ? await tf.loadLayersModel(tfjsFileHandler(config.model.topology))
        : await buildModel(config.model, config.training.seed);
    checkDataForModel(model, config.loss, datasets);
    const layout = ParamLayout.fromModel(model);
    const initialParams = new Float32Array(layout.length);
    layout.readFrom(model, initialParams);
    const initialNonTrainable = new Float32Array(layout.nonTrainableLength);
    layout.readNonTrainableFrom(model, initialNonTrainable);
    // One forward and backward pass on two training samples: a model that cannot train with its loss fails now, naming the layer.
    checkModelTrains(model, config.loss, datasets[0]!, !('topology' in config.model));
    const outputShape = model.outputs[0]!.shape;
    const outputSize = product(outputShape.slice(1).map((d) => d ?? 1));
    const topology = model.toJSON(null, false) as object;
    model.dispose();
    return { layout, initialParams, initialNonTrainable, outputSize, topology };
  } finally {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  }
}

/** A monitor (`field` of the config) must name an epoch metric this run reports; checked before any step. */
function checkMonitor(field: string, name: string | undefined, config: RunConfig, validates: boolean): void {
  if (!name) return;
  const names = ['loss', ...config.metrics];
  const known = validates ? [...names, ...names.map((n) => `val_${n}`)] : names;
  if (!known.includes(name)) {
    throw new UserError(`${field}: expected an epoch metric of this run (${known.join(', ')}), found "${name}"`);
  }
}

function arrangeDatasets(config: RunConfig, data: LoadedData): RunDatasets {
  const { validationSplit, validateOnTest } = config.training;
  const datasets: RunDatasets = { train: data.train, test: data.test };
  if (validateOnTest) {
    if (!data.test) throw new UserError('training.validateOnTest is set, but the data source has no test set');
    datasets.validation = data.test;
  } else if (validationSplit > 0) {
    const split = splitValidation(data.train, validationSplit);
    datasets.train = split.train;
    datasets.validation = split.validation;
  }
  return datasets;
}
