/** Why a Kubernetes API call failed; the message says what is missing and how to fix it. */
export class KubernetesError extends Error {
  /** The HTTP status, when the API server answered. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'KubernetesError';
    this.status = status;
  }
}
