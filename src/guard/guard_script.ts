/**
 * The guard itself: a bash script, embedded in the binary as a string and run as
 * `bash -c GUARD_SCRIPT baton-guard DIR`. About 3 MiB of RSS, no fork in its loop, no network,
 * no decision of its own. It waits on its FIFO (`DIR/fifo`) with `read -t` for the time left
 * on the lease, so it wakes only for a message or the deadline:
 *
 * - `L <ms>`: the lease runs until `<ms>` of /proc/uptime (CLOCK_BOOTTIME, in ms);
 * - `U`: no lease (standby, one node, maintenance by agreement);
 * - `Q`: exit without touching anything (the agent replaces the guard).
 *
 * When the deadline passes it SIGKILLs every target listed in `DIR/targets` (`cg <dir>`: the
 * whole cgroup, by `cgroup.kill` or by its `cgroup.procs`; `pg <pgid> <starttime>`: the process
 * group, only if its leader still has that start time), having first appended
 * `<uptime-ms> <reason>` to `DIR/fenced` (so the line exists before any app dies), removes each
 * floating IP listed (`ip <address/prefix> <interface>`, after the kills: `ip addr del`), and
 * disarms. A SIGTERM, SIGINT or SIGHUP to an armed guard fences at once too.
 * It opens its FIFO read-write, so it never sees an end of file when an agent goes away; if
 * reading it fails anyway, an armed guard fences and exits (never a busy loop). It raises itself
 * to real-time priority (SCHED_FIFO 10, else nice -20) once at start: it sleeps in `read`
 * nearly always, and on a loaded host its kill must not wait for a CPU.
 *
 * @module
 */

/** The guard's bash source; `$1` is its directory. (`@{` stands for bash's `${`.) */
export const GUARD_SCRIPT: string = String.raw`
set -u
dir=$1
PATH=$PATH:/usr/sbin:/sbin
exec 3<>"$dir/fifo" 0</dev/null
deadline=0 now=0 cmd= arg= t= rem= rc=0
# Real-time priority (one fork, at start only): on a loaded host a kill must not wait for a CPU.
{ chrt -f -p 10 $$ || renice -n -20 -p $$; } >/dev/null 2>&1
_now() { local up; read -r up _ </proc/uptime; up=@{up/./}; now=$(( 10#$up * 10 )); }
_fence() {
  local kind a b line rest p round
  # Recorded before the first kill, so an agent that sees an app die already finds the line.
  _now
  echo "$now $reason" >>"$dir/fenced"
  while read -r kind a b; do
    case $kind in
      cg)
        if ! { echo 1 >"$a/cgroup.kill"; } 2>/dev/null; then
          for round in 1 2 3 4 5 6 7 8; do
            [ -s "$a/cgroup.procs" ] || break
            while read -r p; do kill -9 "$p" 2>/dev/null; done <"$a/cgroup.procs"
          done
        fi ;;
      pg)
        if read -r line <"/proc/$a/stat"; then
          rest=@{line##*) }
          set -f; set -- $rest; set +f
          [ "@{20-}" = "$b" ] && kill -9 -- "-$a" "$a"
        fi 2>/dev/null ;;
      ip) ip addr del "$a" dev "$b" >/dev/null 2>&1 ;;
    esac
  done <"$dir/targets" 2>/dev/null
  deadline=0
}
trap 'if (( deadline > 0 )); then reason=signal; _fence; fi; exit 0' TERM INT HUP
while :; do
  if (( deadline > 0 )); then
    _now
    rem=$(( deadline - now ))
    if (( rem <= 0 )); then reason=expired; _fence; continue; fi
    printf -v t '%d.%03d' $(( rem / 1000 )) $(( rem % 1000 ))
    read -r -t "$t" cmd arg <&3 || { rc=$?; (( rc > 128 )) && continue; break; }
  else
    read -r cmd arg <&3 || break
  fi
  case $cmd in
    L) deadline=$(( 10#$arg )) ;;
    U) deadline=0 ;;
    Q) exit 0 ;;
  esac
done
# The FIFO failed (no more orders can come): an armed lease ends now, and the guard exits (the
# agent, if it runs, starts another).
if (( deadline > 0 )); then reason=broken; _fence; fi
exit 1
`.replaceAll("@{", "${");
