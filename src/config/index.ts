/** Run configs: schema, loading with clear errors, command-line overrides. */
export * from './schema.js';
export { LAYER_TYPES, isLayerType } from './layers.js';
export { applyOverrides, loadRunConfig, parseRunConfig, resolveWorkers, type ConfigOverrides } from './load.js';
export { formatIssues, formatPath, formatValue, type ConfigProblem } from './format.js';
