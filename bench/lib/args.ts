/** The value after `name` in a bench's arguments (`--rounds 5` gives "5"), if `name` is there. */
export function flag(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index === -1 ? undefined : args[index + 1];
}

/** Every value after `name` in a bench's arguments, for a flag that may be given more than once. */
export function flags(args: string[], name: string): string[] {
  return args.flatMap((arg, index) => (arg === name && index + 1 < args.length ? [args[index + 1]!] : []));
}
