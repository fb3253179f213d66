/**
 * The name ringtrain gives layer `index` of a layer list ("dense_2", "max_pooling2d_3"): stable,
 * so parameter names ("dense_2/kernel") are the same in every thread, and the config's symbolic
 * build (inspect-layers.ts) names layers exactly as the real one (build-model.ts).
 */
export function layerName(type: string, index: number): string {
  return `${type.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()}_${index + 1}`;
}
