/** Every report sink of a run, in the order they see each event: a new sink is one line here. */
import { runReportSink } from './dashboard/report-file.js';
import { metricsLogSink } from './metrics-log.js';
import { consoleSink } from './reporter.js';
import type { ReportSinkType } from './sink.js';
import { tensorboardSink } from './tensorboard/tensorboard-sink.js';
import { traceSink } from './trace.js';

export const REPORT_SINKS: readonly ReportSinkType[] = [consoleSink, metricsLogSink, tensorboardSink, traceSink, runReportSink];
