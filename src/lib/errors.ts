/**
 * Every error preemptd raises on purpose carries a stable `code`; docs/errors.md lists them.
 * Messages never contain secrets: callers pass redacted values only.
 */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_METADATA_HTTP'
  | 'ERR_METADATA_TIMEOUT'
  | 'ERR_METADATA_BODY'
  | 'ERR_TOKEN_TIMEOUT'
  | 'ERR_PROVIDER_DETECT'
  | 'ERR_STEP_TIMEOUT'
  | 'ERR_STEP_FAILED'
  | 'ERR_RESTORE'
  | 'ERR_USAGE';

export class PreemptdError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PreemptdError';
    this.code = code;
  }
}

/** One problem in a config file; `path` is the field path such as `steps[2].signal.signal`. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** Invalid configuration: exit code 78 (EX_CONFIG), nothing starts. */
export class ConfigError extends PreemptdError {
  readonly file: string | undefined;
  readonly issues: ConfigIssue[];
  constructor(file: string | undefined, issues: ConfigIssue[]) {
    const where = file ?? '<config>';
    const lines = issues.map((issue) => `  ${issue.path ? `${issue.path}: ` : ''}${issue.message}`);
    super('ERR_CONFIG', `invalid config ${where}:\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

/**
 * A step failed in a way it has described itself (the message is user-facing and already
 * free of secrets); `detail` (facts such as the HTTP status or bytes moved) still reaches
 * the summary.
 */
export class StepFailure extends PreemptdError {
  readonly detail: Record<string, unknown> | undefined;
  constructor(message: string, detail?: Record<string, unknown>) {
    super('ERR_STEP_FAILED', message);
    this.name = 'StepFailure';
    this.detail = detail;
  }
}

export const EXIT_CONFIG = 78;
export const EXIT_USAGE = 64;

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
