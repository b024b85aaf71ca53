/** The metav1.Status bodies the API server answers failures with, and an error that carries one. */

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: Array<{ reason: string; message: string; field?: string }>;
}

export function statusBody(code: number, reason: string, message: string, details?: StatusDetails): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 400 ? 'Success' : 'Failure', ...(message ? { message } : {}), ...(reason ? { reason } : {}), ...(details ? { details } : {}), code };
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  get body(): object {
    return statusBody(this.code, this.reason, this.message, this.details);
  }
}

export const notFound = (resource: string, name: string, group = ''): ApiError =>
  new ApiError(404, 'NotFound', `${resource}${group ? `.${group}` : ''} "${name}" not found`, { name, ...(group ? { group } : {}), kind: resource });
