"""Link types, tunnels and the layer constants both decoders (numpy and compiled) use."""
from __future__ import annotations

from enum import IntEnum

# LINKTYPE_* values decoded.
LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP = 0, 1, 101, 108
LT_PPP, LT_PPP_HDLC, LT_CHDLC = 9, 50, 104
LT_SLL, LT_RADIOTAP, LT_JUNIPER_ETHER, LT_IPV4, LT_IPV6 = 113, 127, 178, 228, 229
LT_NFLOG, LT_IPOIB, LT_SLL2 = 239, 242, 276
LT_RAW_ALIASES = (12, 14)  # DLT_RAW on some BSDs
LINKTYPE_NAMES = {0: "NULL", 1: "EN10MB", 9: "PPP", 12: "RAW", 14: "RAW", 50: "PPP_HDLC",
                  101: "RAW", 104: "C_HDLC", 108: "LOOP", 113: "LINUX_SLL",
                  127: "IEEE802_11_RADIOTAP", 178: "JUNIPER_ETHER", 228: "IPV4", 229: "IPV6",
                  239: "NFLOG", 242: "IPOIB", 276: "LINUX_SLL2"}
SUPPORTED = tuple(sorted(LINKTYPE_NAMES))
RAW_IP = (LT_RAW, LT_IPV4, LT_IPV6) + LT_RAW_ALIASES

ET_IPV4, ET_IPV6 = 0x0800, 0x86DD
ET_MPLS, ET_MPLS_MULTICAST, ET_PPPOE_SESSION = 0x8847, 0x8848, 0x8864
ET_TEB = 0x6558            # transparent Ethernet bridging (GRE, Geneve)
ET_ERSPAN_I_II, ET_ERSPAN_III = 0x88BE, 0x22EB
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
IPV6_EXT = (0, 43, 60)     # hop-by-hop, routing, destination options
BSD_AF_INET6 = (10, 24, 28, 30)   # AF_INET6 on Linux, the BSDs and macOS
FLOW_MIX = 0x9E3779B97F4A7C15     # the multiplier of the flow-key hash
IP_IN_IP, IPV6_IN_IP, IP_GRE, IP_UDP = 4, 41, 47, 17
UDP_VXLAN, UDP_GENEVE, UDP_GTPU, UDP_TEREDO = 4789, 6081, 2152, 3544
MAX_LAYERS = 16            # encapsulations peeled at most (a loop of tunnels is damage)


class Tunnel(IntEnum):
    """The encapsulations a packet came through (bits of ``Tunneled.kinds``)."""
    MPLS = 1
    PSEUDOWIRE = 2       # Ethernet over MPLS
    PPPOE = 4
    GRE = 8
    GRE_ETHERNET = 16    # GRE transparent Ethernet bridging
    ERSPAN = 32
    VXLAN = 64
    GENEVE = 128
    GTPU = 256
    IP_IN_IP = 512       # 4in4, 6in4, 4in6, 6in6
    TEREDO = 1024


TUNNEL_NAMES = (("mpls", Tunnel.MPLS), ("pseudowire", Tunnel.PSEUDOWIRE), ("pppoe", Tunnel.PPPOE),
                ("gre", Tunnel.GRE), ("gre-ethernet", Tunnel.GRE_ETHERNET),
                ("erspan", Tunnel.ERSPAN), ("vxlan", Tunnel.VXLAN), ("geneve", Tunnel.GENEVE),
                ("gtp-u", Tunnel.GTPU), ("ip-in-ip", Tunnel.IP_IN_IP), ("teredo", Tunnel.TEREDO))


class Skip(IntEnum):
    """Why a frame yielded no IP packet (the ``DecodeStats`` counter it goes to)."""
    NONE = 0
    NOT_IP = 1            # another ethertype, a PPP control protocol, a header cut short
    UNSUPPORTED_LINK = 2
    WLAN_CONTROL = 3      # 802.11 management, control or null-data frames
    WLAN_PROTECTED = 4    # 802.11 data encrypted


def linktype_name(lt: int) -> str:
    return LINKTYPE_NAMES.get(lt, f"LINKTYPE_{lt}")


def tunnel_kind(kinds: int, outer_version: int = 0, inner_version: int = 0) -> str:
    """A tunnel's kind as reports name it: its layers outermost first where known
    ("mpls+gre", "gre+vxlan"); IP in IP by versions ("6in4")."""
    names = []
    for name, bit in TUNNEL_NAMES:
        if kinds & bit:
            if bit == Tunnel.IP_IN_IP and outer_version and inner_version:
                name = {(4, 4): "ipip", (4, 6): "6in4", (6, 4): "4in6", (6, 6): "6in6"}.get(
                    (outer_version, inner_version), name)
            names.append(name)
    if "gre-ethernet" in names and "gre" in names:
        names.remove("gre")
    if "erspan" in names and "gre" in names:
        names.remove("gre")
    return "+".join(names)
