// Configuration text shared by the policy tests (config, compiler, replay, lab).

/** The issue's file, verbatim. */
export const ISSUE_POLICIES = `uplinks:
  - name: isp1
    interface: if1
    address: 198.51.100.2/24
    gateway: 198.51.100.1
    nat: masquerade          # LAN traffic leaving isp1 gets isp1's address
  - name: isp2
    interface: if2
    dhcp: true
    nat: masquerade
lan: [if0]
policies:                    # first match wins; traffic matching none is balanced as today
  - name: office
    from: 192.168.20.0/24    # address, network or list of them
    use: [isp2, isp1]        # in order: the first usable uplink
  - name: voip
    from: 192.168.10.20
    protocol: udp
    port: 5060-5080          # destination port or range
    use: [isp1]
    strict: true             # never another uplink: unreachable while isp1 is unusable
  - name: bank
    to: 203.0.113.0/24
    use: [isp1, isp2]
`;
