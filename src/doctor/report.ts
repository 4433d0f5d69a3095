/**
 * Turning checks into a report, and the report into text: aligned human
 * output (colour only when asked) or the stable JSON schema.
 */
import type { CheckResult, CheckStatus, DoctorReport, DoctorSummary, HostFacts } from './types.js';
import { REPORT_SCHEMA } from './types.js';

export function summarise(checks: readonly CheckResult[]): DoctorSummary {
  const summary = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const check of checks) summary[check.status] += 1;
  return summary;
}

export function buildReport(host: HostFacts, checks: readonly CheckResult[]): DoctorReport {
  const summary = summarise(checks);
  return { schema: REPORT_SCHEMA, host, checks, summary, ok: summary.fail === 0 };
}

/** Key order is part of the schema, so JSON output is stable line by line. */
export function renderJson(report: DoctorReport): string {
  const checks = report.checks.map((check) => {
    const ordered: Record<string, unknown> = {
      id: check.id,
      title: check.title,
      status: check.status,
      finding: check.finding,
    };
    if (check.remedy !== undefined) ordered.remedy = check.remedy;
    if (check.detail !== undefined) ordered.detail = check.detail;
    return ordered;
  });
  return `${JSON.stringify({ ...report, checks }, null, 2)}\n`;
}

const TAGS: Readonly<Record<CheckStatus, string>> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

// SGR colours: green, yellow, red, dim.
const COLOURS: Readonly<Record<CheckStatus, string>> = { pass: '32', warn: '33', fail: '31', skip: '2' };

function paint(text: string, status: CheckStatus, colour: boolean): string {
  return colour ? `\u001b[${COLOURS[status]}m${text}\u001b[0m` : text;
}

export function renderHuman(report: DoctorReport, options: { readonly colour: boolean }): string {
  const { host, checks, summary } = report;
  const lines: string[] = [];
  const config = host.config === null ? 'no config (host checks only)' : `config ${host.config}`;
  lines.push(`tcpao-proxy doctor: ${host.hostname}, kernel ${host.kernel}, ${config}`);
  lines.push('');
  const titleWidth = Math.max(...checks.map((check) => check.title.length), 0);
  const indent = ' '.repeat(2 + 4 + 2 + titleWidth + 2);
  for (const check of checks) {
    const tag = paint(TAGS[check.status], check.status, options.colour);
    lines.push(`  ${tag}  ${check.title.padEnd(titleWidth)}  ${check.finding}`);
    if (check.remedy !== undefined && check.status !== 'pass') lines.push(`${indent}remedy: ${check.remedy}`);
  }
  lines.push('');
  const verdict = report.ok ? 'nothing fails' : 'NOT READY: fix the failing checks';
  const verdictStatus: CheckStatus = report.ok ? 'pass' : 'fail';
  lines.push(
    `${summary.pass} pass, ${summary.warn} warn, ${summary.fail} fail, ${summary.skip} skip: ` +
      paint(verdict, verdictStatus, options.colour),
  );
  return `${lines.join('\n')}\n`;
}
