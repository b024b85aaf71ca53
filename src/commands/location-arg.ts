import { PreemptdError } from '../lib/errors.js';
import { parseLocation, type StoreLocation } from '../stores/location.js';

/** A store location given on the command line: a bad one is a usage error (exit 64) naming the argument, caught before anything starts. */
export function locationArgument(name: string, text: string): StoreLocation {
  try {
    return parseLocation(text);
  } catch (error) {
    if (error instanceof PreemptdError && error.code === 'ERR_LOCATION') throw new PreemptdError('ERR_USAGE', `${name}: ${error.message}`, { cause: error });
    throw error;
  }
}
