/** The run config's `report` section: options of the report sinks (config/schema.ts takes it in). */
import { z } from 'zod';
import { tensorboardSchema, type TensorboardConfig } from './tensorboard/config.js';

const sections = { tensorboard: tensorboardSchema.prefault({}) };

export const reportSchema = z.strictObject(sections, { error: 'an object such as {"tensorboard": {"histograms": true}}' });

export interface ReportConfig {
  tensorboard: TensorboardConfig;
}

/** The fields of each object of the section, for suggestions on unknown fields (by JSON path). */
export const REPORT_FIELDS: Readonly<Record<string, readonly string[]>> = {
  report: Object.keys(sections),
  'report.tensorboard': Object.keys(tensorboardSchema.shape),
};
