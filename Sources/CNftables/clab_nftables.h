// Debian's libnftables (libnftables-dev): the same rule language as the nft command, as a library.
#include <nftables/libnftables.h>
