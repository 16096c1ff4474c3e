# LDAP connector: users, groups and their members from on-premises Active
# Directory (or a Samba AD DC) or OpenLDAP, read with a simple bind. Which
# kinds of groups are read (security, mail_security, distribution) is not
# connector config: group_types in the connector's import policy chooses
# them (default ["security", "distribution"]).
#
# Create a service account that may read users and groups under base_dn
# (in Active Directory any domain user may; in OpenLDAP give it read access
# with an olcAccess rule), and keep its password in a file readable only by
# the dirsync user. Use TLS: Active Directory refuses a simple bind over
# plain ldap:// unless its policy was relaxed.

# connector "corp" {
#   plugin = "ldap"
#
#   config {
#     ## The directory server: ldaps://host[:port] (TLS, default port 636)
#     ## or ldap://host[:port] (default port 389). (required)
#     url = "ldaps://dc1.corp.example.com"
#
#     ## Upgrade an ldap:// connection to TLS with StartTLS before binding
#     ## (not with ldaps://).
#     # start_tls = false
#
#     ## The account to bind as: a DN, or for Active Directory also
#     ## user@domain or DOMAIN\user. (required)
#     bind_dn = "CN=dirsync,OU=Service Accounts,DC=corp,DC=example,DC=com"
#
#     ## Its password: exactly one of bind_password or bind_password_file.
#     ## The file is read at every use (rotating the password needs no
#     ## restart); trailing newlines are removed, other whitespace is kept.
#     ## Relative paths resolve against the folder of this file.
#     bind_password_file = "secrets/corp-ldap-password"
#     # bind_password = "..."
#
#     ## A PEM file of CA certificates to trust (besides the system's) for
#     ## the server's certificate, e.g. the domain's enterprise CA.
#     ## Certificate checks cannot be turned off.
#     # ca_file = "/etc/dirsync/corp-ca.pem"
#
#     ## Where user and group searches start (subtree). (required)
#     base_dn = "DC=corp,DC=example,DC=com"
#
#     ## The kind of server: "active_directory" (also Samba AD) or
#     ## "openldap". Detected from the server's rootDSE when left out.
#     # flavor = "active_directory"
#
#     ## The LDAP filters selecting users and groups. Defaults:
#     ##   Active Directory  (&(objectCategory=person)(objectClass=user))
#     ##                     (objectClass=group)
#     ##   OpenLDAP          (objectClass=inetOrgPerson)
#     ##                     (|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))
#     # user_filter = "(&(objectCategory=person)(objectClass=user)(mail=*))"
#     # group_filter = "(objectClass=group)"
#
#     ## OpenLDAP only: the filter marking disabled users (by default those
#     ## the ppolicy overlay locked). Active Directory's userAccountControl
#     ## says it.
#     # disabled_filter = "(pwdAccountLockedTime=*)"
#
#     ## Entries asked for per page of a search (1 to 5000); keep it at or
#     ## below the server's limit (Active Directory's MaxPageSize is 1000).
#     # page_size = 500
#
#     ## Reserved: chasing referrals to other servers is not supported
#     ## yet (true is refused); referrals are skipped.
#     # follow_referrals = false
#
#     ## How long one LDAP operation (connecting, binding, one page) may
#     ## take, in seconds (1 to 3600).
#     # timeout = 30
#
#     ## Where a non-standard schema keeps what the connector reads. The
#     ## defaults are Active Directory's / OpenLDAP's:
#     # attr_id = "objectGUID"              # entryUUID
#     # attr_mail = "mail"
#     # attr_display_name = "displayName"   # cn when empty
#     # attr_given_name = "givenName"
#     # attr_surname = "sn"
#     # attr_department = "department"      # departmentNumber
#     # attr_job_title = "title"
#     # attr_upn = "userPrincipalName"      # none
#     # attr_member = "member"              # member and uniqueMember
#   }
# }
