#!/bin/bash
# mkconf.sh TARGETDIR IP  -> writes TARGETDIR/etc/smb.conf
T=$1; IP=$2
cat > $T/etc/smb.conf <<EOC
[global]
	netbios name = DC1
	workgroup = EXAMPLE
	realm = EXAMPLE.TEST
	server role = active directory domain controller
	idmap_ldb:use rfc2307 = yes
	interfaces = $IP/8
	bind interfaces only = yes
	server services = ldap
	disable netbios = yes
	ldap server require strong auth = no
	private dir = $T/private
	lock directory = $T
	state directory = $T/state
	cache directory = $T/cache
	binddns dir = $T/bind-dns
	pid directory = $T/run
	ncalrpc dir = $T/ncalrpc
	log level = 1

[sysvol]
	path = $T/state/sysvol
	read only = No

[netlogon]
	path = $T/state/sysvol/example.test/scripts
	read only = No
EOC
