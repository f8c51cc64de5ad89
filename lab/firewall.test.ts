import assert from 'node:assert/strict';
import { test } from 'node:test';
import { iptablesRestore, nftRuleset, ownChainRemoval, ownChainRestore, parseChainPackets, type LabRule } from './firewall';

const RULES: LabRule[] = [
  { kind: 'source-filter', iif: 'cust', allowed: '198.51.100.0/24', comment: 'spoofed customer source' },
  { kind: 'masquerade', from: '192.168.10.0/24', oifs: ['vlan101', 'vlan102'] },
];

test('iptables-restore text: a FORWARD drop of foreign customer sources, a masquerade per uplink, INVALID dropped where it masquerades', () => {
  assert.equal(
    iptablesRestore(RULES),
    [
      '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
      '-A FORWARD -i cust ! -s 198.51.100.0/24 -m comment --comment "spoofed customer source" -j DROP',
      '-A INPUT -m conntrack --ctstate INVALID -j DROP',
      '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
      'COMMIT',
      '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
      '-A POSTROUTING -s 192.168.10.0/24 -o vlan101 -j MASQUERADE',
      '-A POSTROUTING -s 192.168.10.0/24 -o vlan102 -j MASQUERADE',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('nft text: the same rules in tables lab_isp and lab_nat', () => {
  const text = nftRuleset(RULES);
  assert.match(text, /table ip lab_isp \{[\s\S]*iifname "cust" ip saddr != 198\.51\.100\.0\/24 counter drop/);
  assert.match(text, /table ip lab_nat \{[\s\S]*ip saddr 192\.168\.10\.0\/24 oifname "vlan102" masquerade/);
});

test('a lab on legacy iptables gets a config with pinning off (pinning needs nftables ip family)', async () => {
  const { renderLabConfig } = await import('./config');
  const { sampleLab } = await import('./fixture');
  const { parseConfig } = await import('../src/config/load');
  assert.equal(parseConfig(renderLabConfig({ ...sampleLab(), firewall: 'iptables' }), 'lab.yaml').pinning?.enabled, false);
  assert.equal(parseConfig(renderLabConfig({ ...sampleLab(), firewall: 'nft' }), 'lab.yaml').pinning?.enabled, true);
  assert.equal(parseConfig(renderLabConfig(sampleLab()), 'lab.yaml').pinning?.enabled, true);
});

test('own iptables chain: added with a jump from its hook, removed with jump, rules and chain, nothing else named', () => {
  const c = { table: 'filter', hook: 'INPUT', chain: 'lab_silent', rules: ['-d 192.0.2.53 -p icmp --icmp-type echo-request -j DROP'] } as const;
  assert.equal(
    ownChainRestore({ ...c, rules: [...c.rules] }),
    '*filter\n:lab_silent - [0:0]\n-I INPUT -j lab_silent\n-A lab_silent -d 192.0.2.53 -p icmp --icmp-type echo-request -j DROP\nCOMMIT\n',
  );
  assert.equal(ownChainRemoval(c), '*filter\n-D INPUT -j lab_silent\n-F lab_silent\n-X lab_silent\nCOMMIT\n');
});

test('iptables -L -v -x listing: packets per rule in order, header lines skipped', () => {
  const listing = [
    'Chain lab_probes (1 references)',
    '    pkts      bytes target     prot opt in     out     source               destination',
    '      31     2604            icmp --  *      *       198.51.100.10        192.0.2.80           icmptype 8',
    '       0        0            icmp --  *      *       198.51.100.10        192.0.2.53           icmptype 8',
    '',
  ].join('\n');
  assert.deepEqual(parseChainPackets(listing), [31, 0]);
  assert.deepEqual(parseChainPackets(''), []);
});
