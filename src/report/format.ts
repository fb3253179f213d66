/** Keras-style text for losses and metrics: "loss: 0.2709 - accuracy: 0.9243". */
import type { MetricValues } from '../train/events.js';

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(3) : value.toFixed(4);
}

export function formatMetrics(loss: number, metrics: MetricValues, prefix = ''): string {
  return [`${prefix}loss: ${formatNumber(loss)}`, ...Object.entries(metrics).map(([k, v]) => `${prefix}${k}: ${formatNumber(v)}`)].join(' - ');
}

/** " - lr: 0.0010" (nothing for a record that has no rate, e.g. from an older checkpoint). */
export function formatLearningRate(lr: number | undefined): string {
  return lr === undefined ? '' : ` - lr: ${formatNumber(lr)}`;
}

export function formatRate(samplesPerSec: number): string {
  return `${Math.round(samplesPerSec).toLocaleString('en-US')} samples/s`;
}
