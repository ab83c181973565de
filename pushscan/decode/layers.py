"""Link types and the layer constants both decoders (numpy and compiled) use."""
from __future__ import annotations

# LINKTYPE_* values decoded.
LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP = 0, 1, 101, 108
LT_SLL, LT_IPV4, LT_IPV6, LT_SLL2 = 113, 228, 229, 276
LT_RAW_ALIASES = (12, 14)  # DLT_RAW on some BSDs
LINKTYPE_NAMES = {0: "NULL", 1: "EN10MB", 12: "RAW", 14: "RAW", 101: "RAW", 108: "LOOP",
                  113: "LINUX_SLL", 228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2"}
SUPPORTED = tuple(sorted(LINKTYPE_NAMES))

ET_IPV4, ET_IPV6 = 0x0800, 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
IPV6_EXT = (0, 43, 60)     # hop-by-hop, routing, destination options
BSD_AF_INET6 = (10, 24, 28, 30)   # AF_INET6 on Linux, the BSDs and macOS
FLOW_MIX = 0x9E3779B97F4A7C15     # the multiplier of the flow-key hash


def linktype_name(lt: int) -> str:
    return LINKTYPE_NAMES.get(lt, f"LINKTYPE_{lt}")
