import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { CliError } from '../errors.js';
import { crdPath } from '../../operator/api/paths.js';

/** A ProcessingJob as read from a user's YAML file, after the CRD schema's defaults are applied. */
export interface JobDocument {
  apiVersion: string;
  kind: 'ProcessingJob';
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  spec: Record<string, unknown>;
}

const API_VERSION = 'sluice.dev/v1alpha1';

let validator: ValidateFunction | undefined;

/**
 * The same openAPIV3Schema the API server checks at admission, read from the
 * CRD in crds/, so `sluice run` refuses (and defaults) exactly what
 * `kubectl apply` would. CEL rules are not evaluated locally.
 */
function specValidator(): ValidateFunction {
  if (validator) return validator;
  const crdFile = crdPath;
  const crd = parseAllDocuments(readFileSync(crdFile, 'utf8'))[0]?.toJS() as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Record<string, unknown> } }[] };
  };
  const version = crd.spec.versions.find((v) => `sluice.dev/${v.name}` === API_VERSION);
  if (!version) throw new Error(`${crdFile} has no ${API_VERSION} version`);
  // strict: false because the schema carries Kubernetes keywords (x-kubernetes-*) ajv does not know;
  // formats (int32, date-time) are the API server's business, not a local check.
  const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true, validateFormats: false });
  validator = ajv.compile(version.schema.openAPIV3Schema);
  return validator;
}

function describe(errors: ErrorObject[]): string {
  return errors
    .slice(0, 5)
    .map((e) => {
      const path = e.instancePath.replace(/^\//, '').replaceAll('/', '.') || '(root)';
      const extra =
        e.keyword === 'additionalProperties'
          ? ` '${String((e.params as { additionalProperty: string }).additionalProperty)}'`
          : e.keyword === 'enum'
            ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`
            : '';
      return `${path}: ${e.message ?? 'is invalid'}${extra}`;
    })
    .join('; ');
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot read (${code ?? String(err)})`);
  }
}

/** The ProcessingJob documents of a YAML stream (others, such as a Secret beside a cart job, are skipped). */
function jobDocuments(file: string, text: string): JobDocument[] {
  const jobs: JobDocument[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new CliError(`${file}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    const value = doc.toJS() as Partial<JobDocument> | null;
    if (value?.kind === 'ProcessingJob') jobs.push(value as JobDocument);
  }
  return jobs;
}

function pick(file: string, jobs: JobDocument[], name: string | undefined): JobDocument {
  const chosen = name ? jobs.filter((j) => j.metadata?.name === name) : jobs;
  if (chosen.length === 0) {
    throw new CliError(name ? `${file}: no ProcessingJob named '${name}'` : `${file}: no document with kind: ProcessingJob`);
  }
  if (chosen.length > 1) {
    const names = chosen.map((j) => j.metadata?.name).join(', ');
    throw new CliError(`${file}: holds several ProcessingJobs (${names}); pick one with --name`);
  }
  return chosen[0]!;
}

/**
 * Reads the one ProcessingJob in a YAML file; `name` picks one when the file
 * holds several. The CRD schema's defaults are applied, as the API server would.
 */
export function readJobFile(file: string, name?: string): JobDocument {
  return checked(file, pick(file, jobDocuments(file, readText(file)), name));
}

/** A job and the file it came from. */
export interface JobSource {
  file: string;
  job: JobDocument;
}

/** The YAML files of a directory (not recursive), in name order; a file path stands for itself. */
function expand(path: string): { files: string[]; fromDir: boolean } {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // Not there: readText names it.
  }
  if (!isDir) return { files: [path], fromDir: false };
  const files = readdirSync(path)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(path, f));
  return { files, fromDir: true };
}

/**
 * Every ProcessingJob in the given files and directories (the `start_flink_jobs.py`
 * of the system Sluice replaces: start all of them with one command). A file may
 * hold several jobs; a directory contributes its *.yaml / *.yml files that hold
 * any (others, such as a Secret on its own, are skipped). `names` keeps only
 * those jobs. Two jobs of one name are refused: local state is kept by name.
 */
export function readJobs(paths: string[], names: string[] = []): JobSource[] {
  const found = paths.flatMap(jobsOf);
  const seen = new Map<string, string>();
  for (const { file, job } of found) {
    const first = seen.get(job.metadata.name);
    if (first) throw new CliError(`two ProcessingJobs named '${job.metadata.name}' (${first} and ${file}): local jobs are kept by name`);
    seen.set(job.metadata.name, file);
  }
  if (names.length === 0) return found;
  const missing = names.find((name) => !seen.has(name));
  if (missing) throw new CliError(`no ProcessingJob named '${missing}' in ${paths.join(', ')} (found: ${[...seen.keys()].join(', ')})`);
  return found.filter((s) => names.includes(s.job.metadata.name));
}

/** The jobs of one -f argument: a file, or the YAML files of a folder. */
function jobsOf(path: string): JobSource[] {
  const { files, fromDir } = expand(path);
  if (fromDir && files.length === 0) throw new CliError(`${path}: no .yaml or .yml files in this directory`);
  const found: JobSource[] = [];
  for (const file of files) {
    const docs = jobDocuments(file, readText(file));
    if (docs.length === 0 && !fromDir) throw new CliError(`${file}: no document with kind: ProcessingJob`);
    for (const job of docs) found.push({ file, job: checked(file, job) });
  }
  if (fromDir && found.length === 0) throw new CliError(`${path}: no ProcessingJob in its .yaml files`);
  return found;
}

function checked(file: string, job: JobDocument): JobDocument {
  if (job.apiVersion !== API_VERSION) {
    throw new CliError(`${file}: apiVersion is '${job.apiVersion}', expected '${API_VERSION}'`);
  }
  if (typeof job.metadata?.name !== 'string' || job.metadata.name === '') {
    throw new CliError(`${file}: metadata.name is required`);
  }
  const jobName = job.metadata.name;
  const validate = specValidator();
  const valid: boolean = validate(job);
  if (!valid) throw new CliError(`${file}: invalid ProcessingJob '${jobName}': ${describe(validate.errors ?? [])}`);
  return job;
}
