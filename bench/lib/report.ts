/** Turns per-target results into figures, ratios and a printable table. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';

import type { TargetResult } from './measure.js';
import { REPO } from './proc.js';

export const FIGURES = [
  { key: 'bulkGbps', label: 'bulk Gbit/s (node pair)', better: 'higher' },
  { key: 'iperf3Gbps', label: 'bulk Gbit/s (iperf3)', better: 'higher' },
  { key: 'proxyCpuSecPerGiB', label: 'proxy CPU s per GiB', better: 'lower' },
  { key: 'rttP50Us', label: '64 B RTT p50 us', better: 'lower' },
  { key: 'rttP99Us', label: '64 B RTT p99 us', better: 'lower' },
  { key: 'connPerSec', label: 'new conn/s (c=16)', better: 'higher' },
  { key: 'idleRssKibPerConn', label: 'idle RSS KiB/conn', better: 'lower' },
  { key: 'idlePssKibPerConn', label: 'idle PSS KiB/conn', better: 'lower' },
] as const;

export type FigureKey = (typeof FIGURES)[number]['key'];
export type Figures = Record<FigureKey, number | null>;

export function figuresOf(result: TargetResult): Figures {
  return {
    bulkGbps: result.throughput.medianGbitPerSec,
    iperf3Gbps: result.iperf3?.medianGbitPerSec ?? null,
    proxyCpuSecPerGiB: result.throughput.proxyCpuSecPerGiB,
    rttP50Us: result.rtt.medianP50Us,
    rttP99Us: result.rtt.medianP99Us,
    connPerSec: result.connrate.medianPerSec,
    idleRssKibPerConn: result.idle?.rssKibPerConn ?? null,
    idlePssKibPerConn: result.idle?.pssKibPerConn ?? null,
  };
}

/** numerator / denominator for every figure both have. */
export function ratiosOf(numerator: Figures, denominator: Figures): Partial<Record<FigureKey, number>> {
  const ratios: Partial<Record<FigureKey, number>> = {};
  for (const { key } of FIGURES) {
    const top = numerator[key];
    const bottom = denominator[key];
    if (top !== null && bottom !== null && bottom !== 0) ratios[key] = top / bottom;
  }
  return ratios;
}

const formatValue = (value: number | null | undefined): string => {
  if (value === null || value === undefined) return '-';
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
};

export function renderTable(
  figures: Readonly<Record<string, Figures>>,
  comparisons: readonly (readonly [string, string])[],
): string {
  const targets = Object.keys(figures);
  const ratioNames = comparisons.map(([top, bottom]) => `${top}/${bottom}`);
  const header = ['figure', ...targets, ...ratioNames];
  const rows = FIGURES.map(({ key, label }) => [
    label,
    ...targets.map((target) => formatValue(figures[target]?.[key])),
    ...comparisons.map(([top, bottom]) => {
      const topFigures = figures[top];
      const bottomFigures = figures[bottom];
      if (topFigures === undefined || bottomFigures === undefined) return '-';
      return formatValue(ratiosOf(topFigures, bottomFigures)[key]);
    }),
  ]);
  const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

/** The first output line of `command args` that mentions a version. */
function versionOf(command: string, args: readonly string[]): string | null {
  try {
    const output = execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return output.split('\n').find((line) => /version|\d+\.\d+/i.test(line))?.trim() ?? null;
  } catch {
    return null;
  }
}

export function describeMachine(): Record<string, unknown> {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memoryMiB: Math.round(totalmem() / 1024 ** 2),
    kernel: release(),
    node: process.version,
    socat: versionOf('socat', ['-V']),
    haproxy: versionOf('haproxy', ['-v']),
    iperf3: versionOf('iperf3', ['--version']),
  };
}

/** Writes bench/results/<kind>-<timestamp>.json and returns its path. */
export function writeResult(kind: string, body: Record<string, unknown>, outPath?: string): string {
  const path = outPath ?? join(REPO, 'bench', 'results', `${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
  return path;
}
