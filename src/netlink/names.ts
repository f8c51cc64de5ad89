import { UplinkdError } from '../errors';
import type { Link } from '../model/types';

/** Interface name <-> index lookup the codec is given; it keeps the codec pure. */
export interface IfNames {
  /** Throws UplinkdError('kernel', 'no interface X') for an unknown name. */
  indexOf(name: string): number;
  /** An unknown index reads as "if<index>" (a link that appeared after the last refresh). */
  nameOf(index: number): string;
}

/** The IfNames lookup over one list of links (a link dump), as the codec needs it. */
export function ifNamesFrom(links: Pick<Link, 'index' | 'name'>[]): IfNames {
  const byName = new Map(links.map((l) => [l.name, l.index]));
  const byIndex = new Map(links.map((l) => [l.index, l.name]));
  return {
    indexOf(name) {
      const i = byName.get(name);
      if (i === undefined) throw new UplinkdError('kernel', `no interface ${name}`);
      return i;
    },
    nameOf: (index) => byIndex.get(index) ?? `if${index}`,
  };
}
