// Package zeek reads Zeek logs as a cargowatch Source: conn.log lines
// become Conns, and dns, ssl, http, files and tunnel logs of the same
// rotation period are joined to them by uid, so that the names Zeek saw
// (queries, SNI, Host, URIs) reach the detectors.
//
// Formats: Zeek's TSV (the '#separator', '#set_separator', '#empty_field',
// '#unset_field', '#fields' header, several header blocks per file,
// LogAscii's one-row "tsv" mode) and Zeek's JSON lines (ts as epoch
// seconds, integer milliseconds or ISO 8601; flat or nested "id"), plain
// or gzip (recognised by its magic, whatever the name). Fields cargowatch
// does not read are skipped, whatever they are.
//
// Speed: a TSV conn.log line is read in one pass straight into its Conn;
// a line that pass does not vouch for (escapes, values in unusual forms,
// a wrong field count) goes through the general record reader, which
// alone decides what is malformed, so both read every line alike. JSON
// lines go through the record, their keys predicted from the line
// before. See docs/SOURCES.md for the rates.
//
// Inputs: files and directories. A directory is read with its dated
// subdirectories (zeekctl's 2026-11-29/conn.07:00:00-08:00:00.log.gz) and
// Zeek's archive names (conn.2026-11-29-07-00-00.log.gz); files are
// grouped by directory, name prefix and rotation tag into periods, read in
// time order, live logs last. A file given alone brings the sibling logs
// of its period. RITA's open_conn.log (connections still open) yields
// Conns with Open set.
//
// Bad input: a malformed line (wrong field count, a number or address
// that does not parse, JSON cut short) is skipped and counted; the first
// five per file are logged with file and line, the rest summed up once.
// A file with no good line at all is reported as a *cargowatch.InputError
// naming the count and the first bad line (exit status 2), as is a gzip
// stream cut short, which keeps every record before the cut.
//
// Memory is bounded whatever the input size:
//
//   - the join holds side-log data for at most Options.MaxJoin uids per
//     period (DefaultMaxJoin, 262,144: about 100 MB with one DNS message
//     each); side records of further uids are dropped and counted in
//     Stats.DroppedJoins, and a warning names the period. Per uid at most
//     64 DNS messages (the rest counted in Conn.DNSDropped), 32 HTTP
//     requests and 32 file mime types are kept, as the flow table does;
//   - Options.Reorder (DefaultReorder, 8,192 Conns) are held in a heap to
//     emit each directory's Conns in start-time order (conn.log is
//     written as connections end); a connection longer than the window
//     comes out late. Conns are allocated 64 at a time and a slab lives
//     while any of its Conns does, so held Conns from slabs older than
//     the window are moved to the newest: they pin at most about two
//     windows of slabs (12 MB);
//   - a line longer than Options.MaxLine (1 MiB) is skipped as malformed;
//     the read buffer is 256 KiB;
//   - the interner of enum-like values (proto, state, history, MACs,
//     user agents) keeps at most 4,096 strings.
//
// Follower tails a live log directory for the collector: it finishes a
// rotated file through the descriptor it holds (so a rename, a move to a
// dated directory or gzip-and-delete lose nothing), starts the new file
// from its first byte, and with FollowConfig.StatePath keeps each log's
// identity (device, inode, a hash of its first bytes) and offset in a
// state file written atomically, so a restart resumes where it stopped
// and first reads the archives rotated while it was down. Its join keeps
// two generations of MaxJoin/2 uids; side lines are read before conn
// lines in each poll because Zeek writes them first.
package zeek
