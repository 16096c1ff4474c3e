#!/bin/bash
# usage: run.sh TARGETDIR IP   (IP in 127.0.0.0/8, unique per instance)
set -e
T=$1; IP=$2; HERE=$(cd "$(dirname "$0")" && pwd)
ts() { date +%s.%N; }
rm -rf "$T"
t0=$(ts)
samba-tool domain provision -s /dev/null --use-rfc2307 \
  --realm=EXAMPLE.TEST --domain=EXAMPLE --server-role=dc --dns-backend=NONE \
  --host-name=dc1 --adminpass='Passw0rd!Admin' --targetdir="$T" >"$T.provision.log" 2>&1
t1=$(ts)
"$HERE/mkconf.sh" "$T" "$IP"
# offline seeding (server not running yet), straight into sam.ldb
O="-s $T/etc/smb.conf -H tdb://$T/private/sam.ldb"
samba-tool user create alice 'Passw0rd!alice' --given-name=Alice --surname=Anders --mail-address=alice@example.test $O >/dev/null
samba-tool user create bob 'Passw0rd!bob' --given-name=Bob --surname=Brown $O >/dev/null
samba-tool user create carol 'Passw0rd!carol' $O >/dev/null
samba-tool group add engineers $O >/dev/null
samba-tool group add all-engineers $O >/dev/null
samba-tool group add --group-type=Distribution --mail-address=staff@example.test all-staff $O >/dev/null
samba-tool group addmembers engineers alice,bob $O >/dev/null
samba-tool group addmembers all-engineers engineers $O >/dev/null
samba-tool group addmembers all-staff all-engineers,carol $O >/dev/null
samba-tool user disable carol $O >/dev/null
t2=$(ts)
samba -i -M single -s "$T/etc/smb.conf" >"$T/samba.out" 2>&1 </dev/null &
echo $! >"$T/child.pid"
for i in $(seq 1 300); do
  ldapsearch -x -H "ldap://$IP" -b '' -s base dnsHostName >/dev/null 2>&1 && break
  sleep 0.05
done
t3=$(ts)
echo "provision: $(echo "$t1-$t0"|bc)s  offline-seed(10 samba-tool calls): $(echo "$t2-$t1"|bc)s  start->ready: $(echo "$t3-$t2"|bc)s  total: $(echo "$t3-$t0"|bc)s"
