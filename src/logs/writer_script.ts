/**
 * The per-host log writer itself: a Perl script (Perl is Essential in Debian: `perl-base` is on
 * every host), embedded as a string and run as `perl -e LOG_WRITER_SCRIPT baton-logs DIR LOGS`.
 * About 6 MiB of RSS for all the node's apps together; one `select` loop, no fork, no network.
 *
 * Each app with `logs:` writes to its own FIFO `DIR/<app>.pipe`, which the app's launcher opens
 * read-write (`1<>`): the app itself then holds a reader, so it never gets SIGPIPE, whether the
 * agent or this writer is gone; its output waits in the pipe until a writer reads it again. The
 * writer reads each FIFO (opened read-write and non-blocking, so it never sees an end of file)
 * in chunks of up to 64 KiB and appends them to `LOGS/<app>.log`.
 *
 * Rotation is by size and only at a line boundary: after the part of a chunk that ends with a
 * newline has been written, a file at or above `maxBytes` is renamed to `.1` (`.1` to `.2`, ...,
 * the one past `keep` is overwritten) and a new one is opened; the rest of the chunk (a line not
 * finished yet) goes to the new file, whose next chunk finishes it. So no line is split or lost
 * by a rotation, and a file exceeds `maxBytes` by at most one chunk.
 *
 * Its configuration is `DIR/conf` (`<app> <maxBytes> <keep>` per line), re-read on `R` written
 * to its control FIFO `DIR/ctl`; `Q` (or SIGTERM) makes it drain every pipe and exit. SIGHUP,
 * SIGINT and SIGPIPE are ignored: it lives in its own session and outlives the agent.
 *
 * @module
 */

/** The writer's Perl source; its arguments are `baton-logs DIR LOGS`. */
export const LOG_WRITER_SCRIPT: string = String.raw`
use strict;
use Fcntl qw(O_RDWR O_NONBLOCK O_WRONLY O_APPEND O_CREAT);
my (undef, $dir, $logs) = @ARGV;
$0 = "baton-logs $dir";
$SIG{PIPE} = $SIG{HUP} = $SIG{INT} = 'IGNORE';
my $quit = 0;
$SIG{TERM} = sub { $quit = 1 };
my %app;
sysopen(my $ctl, "$dir/ctl", O_RDWR | O_NONBLOCK) or die "ctl: $!";

sub out_open {
  my ($p) = @_;
  my $path = "$logs/$p->{name}.log";
  sysopen(my $fh, $path, O_WRONLY | O_APPEND | O_CREAT, 0640) or do { warn "$path: $!"; return };
  $p->{out} = $fh;
  $p->{size} = -s $fh || 0;
}

sub rotate {
  my ($p) = @_;
  my $base = "$logs/$p->{name}.log";
  close $p->{out} if $p->{out};
  for (my $i = $p->{keep} - 1; $i >= 1; $i--) {
    rename "$base.$i", "$base." . ($i + 1) if -e "$base.$i";
  }
  rename $base, "$base.1";
  out_open($p);
}

sub put {
  my ($p, $buf) = @_;
  my ($off, $len) = (0, length $buf);
  return unless $p->{out};
  while ($off < $len) {
    my $n = syswrite($p->{out}, $buf, $len - $off, $off);
    if (!defined $n) { next if $!{EINTR}; warn "write $p->{name}: $!"; last }
    $off += $n;
  }
  $p->{size} += $len;
}

sub consume {
  my ($p, $chunk) = @_;
  my $nl = rindex($chunk, "\n");
  if ($nl < 0) { put($p, $chunk); return }
  put($p, substr($chunk, 0, $nl + 1));
  rotate($p) if $p->{size} >= $p->{max};
  put($p, substr($chunk, $nl + 1)) if $nl + 1 < length $chunk;
}

sub reload {
  open(my $conf, '<', "$dir/conf") or return;
  while (my $line = <$conf>) {
    my ($name, $max, $keep) = split ' ', $line;
    next unless defined $keep && $name =~ /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
    my $p = $app{$name} //= { name => $name };
    ($p->{max}, $p->{keep}) = ($max, $keep);
    next if $p->{in};
    my $pipe = "$dir/$name.pipe";
    next unless -p $pipe; # made by the agent before it writes conf
    sysopen(my $in, $pipe, O_RDWR | O_NONBLOCK) or do { warn "$pipe: $!"; next };
    $p->{in} = $in;
    out_open($p);
  }
  close $conf;
}

reload();
my $buf;
while (1) {
  my $rin = '';
  vec($rin, fileno($ctl), 1) = 1;
  vec($rin, fileno($_->{in}), 1) = 1 for grep { $_->{in} } values %app;
  my $n = select(my $rout = $rin, undef, undef, $quit ? 0 : undef);
  if ($n < 0) { next if $!{EINTR}; die "select: $!" }
  exit 0 if $quit && $n == 0;
  if (vec($rout, fileno($ctl), 1) && sysread($ctl, my $cmd, 4096)) {
    reload() if $cmd =~ /R/;
    $quit = 1 if $cmd =~ /Q/;
  }
  for my $p (values %app) {
    next unless $p->{in} && vec($rout, fileno($p->{in}), 1);
    my $r = sysread($p->{in}, $buf, 65536);
    consume($p, $buf) if $r;
  }
}
`;
