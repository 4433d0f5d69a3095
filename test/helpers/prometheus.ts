/**
 * Parses /metrics with parse-prometheus-text-format (a port of the Prometheus
 * Python client's parser), after a line-by-line check against the text
 * exposition grammar, and looks samples up by name and labels.
 */
export interface ParsedSample {
  readonly value: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface ParsedFamily {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly metrics: readonly ParsedSample[];
}

// The package ships no type declarations.
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(?:${LABEL}(?:,${LABEL})*)?\\})? (-?[0-9.e+-]+|NaN|\\+Inf|-Inf)$`);
const HELP = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/** Throws on the first line that is not valid text exposition format, or a sample before its TYPE. */
export function checkExposition(text: string): void {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const typed = new Set<string>();
  text
    .slice(0, -1)
    .split('\n')
    .forEach((line, index) => {
      const type = TYPE.exec(line);
      if (type !== null) {
        if (typed.has(type[1] as string)) throw new Error(`line ${index + 1}: second TYPE for ${type[1]}`);
        typed.add(type[1] as string);
        return;
      }
      if (HELP.test(line)) return;
      const sample = SAMPLE.exec(line);
      if (sample === null) throw new Error(`line ${index + 1} is not a valid sample: ${line}`);
      if (!typed.has(sample[1] as string)) throw new Error(`line ${index + 1}: sample of ${sample[1]} before its TYPE`);
    });
}

export function parseMetrics(text: string): ParsedFamily[] {
  checkExposition(text);
  return parsePrometheusTextFormat(text);
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
export function sampleValue(families: readonly ParsedFamily[], name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const family = families.find((candidate) => candidate.name === name);
  const matches = (family?.metrics ?? []).filter((sample) =>
    Object.entries(labels).every(([label, value]) => sample.labels?.[label] === value),
  );
  if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matches[0] === undefined ? undefined : Number(matches[0].value);
}
