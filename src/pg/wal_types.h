#pragma once

// The decoder's types as the server side names them.

#include "wal/catalog.h"
#include "wal/lsn.h"

namespace pg {

using wal::CatalogColumn;
using wal::Lsn;
using wal::Oid;
using wal::OutboxRelation;
using wal::PgTimestamp;
using wal::RelId;
using wal::Xid;

}  // namespace pg
