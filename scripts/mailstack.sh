#!/usr/bin/env bash
# Loopback mail stack for tests and the demo: Dovecot (IMAP, IMAPS, LMTP) and Postfix
# (SMTP, submission with STARTTLS, SMTPS), both from Debian's packages, bound to 127.0.0.1
# on unprivileged ports, with every file (configs, TLS, mail, queue, logs) in one scratch dir.
#
#   scripts/mailstack.sh install          install the Debian packages if missing (root)
#   scripts/mailstack.sh up               install if needed, write configs, start; idempotent
#   scripts/mailstack.sh down             stop both
#   scripts/mailstack.sh status           exit 0 when both are up, else 1
#   scripts/mailstack.sh clear ADDR...    expunge every message in every folder of ADDR
#   scripts/mailstack.sh path             print the scratch dir
#
# Any address at any domain is a mailbox (created on first delivery or login) and logs in
# with the same password: the office mailboxes (bps3571@bps.go.id …), Kediri's complaint
# mailbox (ipds3571@bps.go.id, [offices.3571.complaint_mailbox]) and the test requesters need no
# set-up. Every recipient domain is delivered over LMTP into Dovecot; nothing
# leaves the machine and no DNS is used. `up` writes $DIR/env (shell exports) for other
# scripts; the TLS CA that clients must trust is $DIR/tls/ca.pem.
set -euo pipefail

DIR=${PST_MAILSTACK_DIR:-/tmp/pst-mailstack}
HOST=127.0.0.1
IMAP_PORT=${PST_IMAP_PORT:-10143}
IMAPS_PORT=${PST_IMAPS_PORT:-10993}
LMTP_PORT=${PST_LMTP_PORT:-10024}
SMTP_PORT=${PST_SMTP_PORT:-2525}
SUBMISSION_PORT=${PST_SUBMISSION_PORT:-10587}
SMTPS_PORT=${PST_SMTPS_PORT:-10465}
PASSWORD=${PST_MAILSTACK_PASSWORD:-pst-loopback}
# Dovecot mail format: maildir (default), sdbox or mdbox. Maildir deliveries slow down as a
# mailbox grows (each one re-reads the whole uidlist); the dbox formats do not. Mail stored in
# one format is not visible in another.
MAIL_FORMAT=${PST_MAILSTACK_MAIL_FORMAT:-maildir}

PACKAGES=(dovecot-imapd dovecot-lmtpd postfix openssl)

TLS_DIR=$DIR/tls
DOVECOT_CONF=$DIR/dovecot/dovecot.conf
DOVECOT_RUN=$DIR/dovecot/run
POSTFIX_ETC=$DIR/postfix/etc
POSTFIX_SPOOL=$DIR/postfix/spool
POSTFIX_LIB=$DIR/postfix/lib
MAIL_DIR=$DIR/mail
ENV_FILE=$DIR/env

log() { printf 'mailstack: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

port_open() {  # port -> 0 when something accepts TCP connections on $HOST:port
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

wait_ports_closed() {  # seconds port... -> 0 once none accepts, 1 on timeout
    local deadline=$((SECONDS + $1)) port
    shift
    for port in "$@"; do
        while port_open "$port"; do
            ((SECONDS < deadline)) || return 1
            sleep 0.05
        done
    done
}

# One `up`/`down`/`clear` at a time per scratch dir (test processes may run side by side).
lock_dir() {
    mkdir -p "$DIR"
    [[ -e $DIR/.lock ]] || : >"$DIR/.lock"
    exec 9<"$DIR/.lock"
    flock -w 120 9 || die "another mailstack.sh holds $DIR/.lock"
}

wait_ports() {  # seconds port... -> 0 once all accept, 1 on timeout
    local deadline=$((SECONDS + $1)) port
    shift
    for port in "$@"; do
        until port_open "$port"; do
            ((SECONDS < deadline)) || return 1
            sleep 0.05
        done
    done
}

check_settings() {
    [[ $DIR = /* && $DIR != *[[:space:]]* && $DIR != / ]] \
        || die "PST_MAILSTACK_DIR must be an absolute path without spaces: '$DIR'"
    # Dovecot expands %-variables in passdb args and splits them on spaces.
    [[ $PASSWORD =~ ^[A-Za-z0-9._+=:,/@-]+$ ]] \
        || die "PST_MAILSTACK_PASSWORD may only use letters, digits and ._+=:,/@-"
    [[ $MAIL_FORMAT == maildir || $MAIL_FORMAT == sdbox || $MAIL_FORMAT == mdbox ]] \
        || die "PST_MAILSTACK_MAIL_FORMAT must be maildir, sdbox or mdbox: '$MAIL_FORMAT'"
    local p
    for p in "$IMAP_PORT" "$IMAPS_PORT" "$LMTP_PORT" "$SMTP_PORT" "$SUBMISSION_PORT" "$SMTPS_PORT"; do
        if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
            die "bad port number: '$p'"
        fi
    done
}

# ---------------------------------------------------------------------------------------
# install

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || echo "$p"
    done
}

POLICY_RC=/usr/sbin/policy-rc.d
POLICY_BACKUP=

restore_policy_rc() {
    if [[ -n $POLICY_BACKUP ]]; then
        mv -f "$POLICY_BACKUP" "$POLICY_RC"
    else
        rm -f "$POLICY_RC"
    fi
}

cmd_install() {
    local missing
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]})) || return 0
    (($(id -u) == 0)) || die "missing packages (${missing[*]}); run as root: $0 install"
    log "installing ${missing[*]}"
    local had_dovecot=no had_postfix=no
    system_dovecot_running && had_dovecot=yes
    system_postfix_running && had_postfix=yes
    # Keep the packages' maintainer scripts from starting system-wide dovecot/postfix
    # (invoke-rc.d and deb-systemd-invoke both obey policy-rc.d; 101 = action forbidden).
    if [[ -e $POLICY_RC ]]; then
        POLICY_BACKUP=$(mktemp "$POLICY_RC.pst-XXXXXX")
        cp -p "$POLICY_RC" "$POLICY_BACKUP"
    fi
    trap restore_policy_rc EXIT
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
    # "No configuration" leaves /etc/postfix/main.cf absent, which is what lets a second
    # Postfix instance run from our own config dir (see ensure_postfix_alternate_dir).
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    restore_policy_rc
    trap - EXIT
    # Belt and braces: if the install started a system-wide instance anyway, stop it.
    if [[ $had_dovecot == no ]] && system_dovecot_running; then
        log "stopping the system-wide dovecot started by the install"
        doveadm stop || true
    fi
    if [[ $had_postfix == no ]] && system_postfix_running; then
        log "stopping the system-wide postfix started by the install"
        postfix stop || true
    fi
}

system_dovecot_running() {
    local pid
    pid=$(cat /run/dovecot/master.pid 2>/dev/null) && alive "$pid" dovecot
}

system_postfix_running() {
    local pid
    pid=$(tr -d ' ' 2>/dev/null </var/spool/postfix/pid/master.pid) && alive "$pid" master
}

# Postfix refuses `-c DIR` when /etc/postfix/main.cf exists and does not list DIR in
# alternate_config_directories. Absent main.cf (our preseed) is fine; present, we add DIR.
ensure_postfix_alternate_dir() {
    [[ -f /etc/postfix/main.cf ]] || return 0
    local cur
    cur=$(postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null || true)
    case " ${cur//,/ } " in
        *" $POSTFIX_ETC "*) return 0 ;;
    esac
    log "adding $POSTFIX_ETC to alternate_config_directories in /etc/postfix/main.cf"
    postconf -c /etc/postfix -e "alternate_config_directories = ${cur:+$cur, }$POSTFIX_ETC"
}

# ---------------------------------------------------------------------------------------
# TLS: a self-signed CA and a server certificate for localhost / 127.0.0.1, made once.

ensure_tls() {
    if [[ -s $TLS_DIR/ca.pem && -s $TLS_DIR/server.pem && -s $TLS_DIR/server.key ]] \
        && openssl verify -CAfile "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" >/dev/null 2>&1 \
        && openssl x509 -in "$TLS_DIR/server.pem" -noout -checkend 86400 >/dev/null 2>&1; then
        return 0
    fi
    log "creating the test CA and server certificate in $TLS_DIR"
    mkdir -p "$TLS_DIR"
    chmod 755 "$TLS_DIR"
    cat >"$TLS_DIR/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = PST mailstack test CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
    (
        cd "$TLS_DIR"
        umask 077
        openssl req -x509 -new -config openssl.cnf -extensions ca_ext \
            -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout ca.key -out ca.pem -days 3650 -subj "/CN=PST mailstack test CA" 2>/dev/null
        openssl req -new -config openssl.cnf \
            -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
            -set_serial "0x$(openssl rand -hex 12)" -days 3650 \
            -extfile openssl.cnf -extensions server_ext -out server.pem 2>/dev/null
        rm -f server.csr
        chmod 644 ca.pem server.pem
        chmod 600 ca.key server.key
    )
}

# ---------------------------------------------------------------------------------------
# configs

write_if_changed() {  # file; content on stdin
    local file=$1 content
    content=$(cat)
    if [[ -f $file ]] && [[ $(cat "$file") == "$content" ]]; then
        return 0
    fi
    printf '%s\n' "$content" >"$file.tmp"
    mv -f "$file.tmp" "$file"
}

# What a running instance was started with, so that `up` restarts it after any change
# (even one written by an earlier `up` that failed half-way).
config_files() {  # dovecot|postfix
    case $1 in
        dovecot) echo "$DOVECOT_CONF $TLS_DIR/server.pem $TLS_DIR/server.key" ;;
        postfix) echo "$POSTFIX_ETC/main.cf $POSTFIX_ETC/master.cf $TLS_DIR/server.pem $TLS_DIR/server.key" ;;
    esac
}
config_stamp() {
    # shellcheck disable=SC2046,SC2002
    cat $(config_files "$1") | sha256sum | cut -d' ' -f1
}
stamp_file() { echo "$DIR/$1/started-with.sha256"; }

dovecot_conf() {
    local mail_uid dh=/usr/share/dovecot/dh.pem
    mail_uid=$(id -u mail)
    cat <<EOF
# Generated by scripts/mailstack.sh; rewritten on every "up".
instance_name = pst-mailstack
base_dir = $DOVECOT_RUN
state_dir = $DIR/dovecot/state
log_path = $DIR/dovecot.log
protocols = imap lmtp
listen = $HOST
verbose_proctitle = yes

ssl = yes
ssl_cert = <$TLS_DIR/server.pem
ssl_key = <$TLS_DIR/server.key
$( [[ -f $dh ]] && echo "ssl_dh = <$dh" )
ssl_min_protocol = TLSv1.2
# Plaintext logins (LOGIN / AUTH PLAIN without TLS) are fine on loopback.
disable_plaintext_auth = no

# One shared password for every address; any address is a valid user.
auth_mechanisms = plain login
auth_username_format = %Lu
auth_failure_delay = 0
auth_verbose = yes
passdb {
  driver = static
  args = password=$PASSWORD
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$MAIL_DIR/%u allow_all_users=yes
}
# Dovecot refuses system uids by default; "mail" is uid $mail_uid on Debian.
first_valid_uid = $mail_uid
mail_location = $( [[ $MAIL_FORMAT == maildir ]] && echo "maildir:~/Maildir" || echo "$MAIL_FORMAT:~/$MAIL_FORMAT" )
# Scratch data: skip fsync; Dovecot is the only writer, so trust its own index.
mail_fsync = never
maildir_very_dirty_syncs = yes
mailbox_idle_check_interval = 1 secs

namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
}

protocol imap {
  mail_max_userip_connections = 200
}
protocol lmtp {
  postmaster_address = postmaster@localhost
}

service imap-login {
  inet_listener imap {
    address = $HOST
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = $HOST
    port = $IMAPS_PORT
    ssl = yes
  }
}
service lmtp {
  process_min_avail = 2
  inet_listener lmtp {
    address = $HOST
    port = $LMTP_PORT
  }
}
# No growing per-IP delay after failed logins (every client here is 127.0.0.1, and past a few
# failures Postfix turns the delay into a 454): a wrong password is refused at once.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  # Postfix SASL (smtpd_sasl_type = dovecot) on the submission and smtps ports.
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
}

postfix_main_cf() {
    local lmtp=lmtp:inet:$HOST:$LMTP_PORT
    cat <<EOF
# Generated by scripts/mailstack.sh; rewritten on every "up".
compatibility_level = 3.6
queue_directory = $POSTFIX_SPOOL
data_directory = $POSTFIX_LIB
maillog_file = $DIR/maillog
maillog_file_prefixes = /var, /dev/stdout, /tmp, $DIR
myhostname = mailstack.localhost
mydomain = localhost
myorigin = \$myhostname
inet_interfaces = $HOST
inet_protocols = ipv4
smtpd_banner = \$myhostname ESMTP
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =

# Every domain is "remote", and remote mail goes over LMTP into Dovecot.
mydestination =
relay_domains =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
default_transport = $lmtp
relay_transport = $lmtp
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
# Faults a real server produces, for the tests of the daemon's outbox: a recipient refused for
# good (550) and one deferred (450), at the domain fault.example.
smtpd_recipient_restrictions = check_recipient_access inline:{ {refused@fault.example = 550 5.1.1 No such user}, {deferred@fault.example = 450 4.2.0 Mailbox busy, try later} }, permit
message_size_limit = 52428800

# No DNS and no outside network.
disable_dns_lookups = yes
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no

# TLS only where the port says so (-o in master.cf): clients such as aiosmtplib start TLS
# by themselves when the plain port advertises STARTTLS, and would not trust our CA.
smtpd_tls_cert_file = $TLS_DIR/server.pem
smtpd_tls_key_file = $TLS_DIR/server.key
smtpd_tls_security_level = none
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtp_tls_security_level = none
lmtp_tls_security_level = none
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DOVECOT_RUN/auth-postfix
smtpd_sasl_auth_enable = no

# Throughput on loopback: no penalties, no slow start; retry soon (e.g. after a Dovecot restart).
in_flow_delay = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 1000
smtpd_client_event_limit_exceptions = \$mynetworks
lmtp_initial_destination_concurrency = 10
lmtp_destination_concurrency_limit = 20
lmtp_destination_recipient_limit = 100
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 10s
EOF
}

postfix_bounce_cf() {
    cat <<EOF

# Asynchronous bounces, for the loop-protection tests: Postfix accepts a mail for one of these
# recipients, then hands it to its error transport, and the sender gets a real RFC 3464 bounce
# (multipart/report from MAILER-DAEMON) delivered like any other mail.
smtpd_data_restrictions = check_recipient_access inline:{ {bounced@fault.example = FILTER error:5.1.1 Mailbox does not exist} }
EOF
}

postfix_master_cf() {
    local submission_opts="
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject"
    # The dist file, with chroot off everywhere and smtp bound to our plain port.
    awk -v smtp="$HOST:$SMTP_PORT" '
        /^[[:space:]]*#/ || /^[[:space:]]/ || NF < 8 { print; next }
        { $5 = "n"; if ($1 == "smtp" && $2 == "inet") $1 = smtp; print }
    ' /usr/share/postfix/master.cf.dist
    cat <<EOF
# Added by scripts/mailstack.sh
$HOST:$SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes$submission_opts
$HOST:$SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes$submission_opts
EOF
}

write_configs() {
    mkdir -p "$DIR" "$DIR/dovecot/state" "$DOVECOT_RUN" "$POSTFIX_ETC" "$POSTFIX_SPOOL" \
        "$POSTFIX_LIB" "$MAIL_DIR"
    if ((EUID == 0)); then
        chmod 755 "$DIR" "$DIR/dovecot" "$DIR/postfix"
        chown mail:mail "$MAIL_DIR"
        chmod 750 "$MAIL_DIR"
        chown postfix:postfix "$POSTFIX_LIB"
    fi
    write_if_changed "$DOVECOT_CONF" < <(dovecot_conf)
    write_if_changed "$POSTFIX_ETC/main.cf" < <(postfix_main_cf; postfix_bounce_cf)
    write_if_changed "$POSTFIX_ETC/master.cf" < <(postfix_master_cf)
}

write_env() {
    local content
    content=$(
        printf 'export %s=%q\n' \
            PST_MAILSTACK_DIR "$DIR" \
            PST_MAILSTACK_HOST "$HOST" \
            PST_IMAP_PORT "$IMAP_PORT" \
            PST_IMAPS_PORT "$IMAPS_PORT" \
            PST_LMTP_PORT "$LMTP_PORT" \
            PST_SMTP_PORT "$SMTP_PORT" \
            PST_SUBMISSION_PORT "$SUBMISSION_PORT" \
            PST_SMTPS_PORT "$SMTPS_PORT" \
            PST_MAILSTACK_CA_FILE "$TLS_DIR/ca.pem" \
            PST_MAILSTACK_PASSWORD "$PASSWORD" \
            PST_MAILSTACK_MAIL_FORMAT "$MAIL_FORMAT"
    )
    if [[ ! -f $ENV_FILE ]] || [[ $(cat "$ENV_FILE") != "$content" ]]; then
        printf '%s\n' "$content" >"$ENV_FILE.tmp"
        mv -f "$ENV_FILE.tmp" "$ENV_FILE"
    fi
}

# ---------------------------------------------------------------------------------------
# processes

alive() {  # pid command-name -> 0 when that pid runs that program (not a zombie)
    local stat
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $stat == "$1 ($2) "* && ${stat##*) } != Z* ]]
}

dovecot_pid() {  # prints the pid of our running dovecot master, or fails
    local pid
    pid=$(cat "$DOVECOT_RUN/master.pid" 2>/dev/null) && alive "$pid" dovecot || return 1
    echo "$pid"
}

postfix_pid() {
    local pid
    pid=$(tr -d ' ' 2>/dev/null <"$POSTFIX_SPOOL/pid/master.pid") && alive "$pid" master || return 1
    echo "$pid"
}

dovecot_ports() { echo "$IMAP_PORT $IMAPS_PORT $LMTP_PORT"; }
postfix_ports() { echo "$SMTP_PORT $SUBMISSION_PORT $SMTPS_PORT"; }

healthy() {  # dovecot|postfix
    local port
    "${1}_pid" >/dev/null || return 1
    for port in $("${1}_ports"); do
        port_open "$port" || return 1
    done
}

wait_gone() {  # pid name seconds
    local deadline=$((SECONDS + $3))
    while alive "$1" "$2"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

stop_dovecot() {
    local pid
    pid=$(dovecot_pid) || return 0
    doveadm -c "$DOVECOT_CONF" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    wait_gone "$pid" dovecot 10 || { log "dovecot $pid did not stop; killing it"; kill -9 "$pid" 2>/dev/null || true; }
    # Its login and lmtp processes hold the listening sockets until they notice.
    # shellcheck disable=SC2046
    wait_ports_closed 10 $(dovecot_ports) || true
    log "dovecot stopped"
}

stop_postfix() {
    local pid
    pid=$(postfix_pid) || return 0
    ((EUID != 0)) || ensure_postfix_alternate_dir
    postfix -c "$POSTFIX_ETC" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    wait_gone "$pid" master 10 || { log "postfix $pid did not stop; killing it"; kill -9 "$pid" 2>/dev/null || true; }
    # shellcheck disable=SC2046
    wait_ports_closed 10 $(postfix_ports) || true
    log "postfix stopped"
}

assert_ports_free() {  # name port...
    local name=$1 port
    shift
    for port in "$@"; do
        if port_open "$port"; then
            die "$name cannot start: $HOST:$port is taken by another process$(
                command -v ss >/dev/null && printf '\n%s' "$(ss -ltnp "sport = :$port" 2>/dev/null | tail -n +2)")"
        fi
    done
}

start_dovecot() {
    # shellcheck disable=SC2046
    assert_ports_free dovecot $(dovecot_ports)
    # Sockets left by an instance that died would outlive a listener removed from the config.
    rm -rf "$DOVECOT_RUN"
    mkdir -p "$DOVECOT_RUN"
    # Not our stdio: the daemons keep what they inherit open, and a caller reading our output
    # through a pipe (subprocess capture_output) would never see it close. Nor the lock (fd 9).
    dovecot -c "$DOVECOT_CONF" </dev/null >"$DIR/dovecot.start.log" 2>&1 9<&- \
        || die "dovecot did not start: $(cat "$DIR/dovecot.start.log"); see $DIR/dovecot.log"
    # shellcheck disable=SC2046
    wait_ports 20 $(dovecot_ports) || die "dovecot ports did not open; see $DIR/dovecot.log"
    # Postfix's SASL client needs the auth socket.
    local deadline=$((SECONDS + 10))
    until [[ -S $DOVECOT_RUN/auth-postfix ]]; do
        ((SECONDS < deadline)) || die "no $DOVECOT_RUN/auth-postfix; see $DIR/dovecot.log"
        sleep 0.05
    done
    chmod 644 "$DIR/dovecot.log" 2>/dev/null || true
    log "dovecot up (pid $(dovecot_pid))"
}

start_postfix() {
    # shellcheck disable=SC2046
    assert_ports_free postfix $(postfix_ports)
    ensure_postfix_alternate_dir
    postfix -c "$POSTFIX_ETC" start </dev/null >"$DIR/postfix.start.log" 2>&1 9<&- \
        || die "postfix did not start: $(cat "$DIR/postfix.start.log"); see $DIR/maillog"
    # shellcheck disable=SC2046
    wait_ports 20 $(postfix_ports) || die "postfix ports did not open; see $DIR/maillog"
    log "postfix up (pid $(postfix_pid))"
}

cmd_up() {
    cmd_install
    ensure_tls
    write_configs
    local name changed restarted=no
    for name in dovecot postfix; do
        changed=no
        [[ $(cat "$(stamp_file "$name")" 2>/dev/null) == "$(config_stamp "$name")" ]] || changed=yes
        if healthy "$name" && [[ $changed == no ]]; then
            continue
        fi
        if "${name}_pid" >/dev/null; then
            if [[ $changed == yes ]]; then
                log "$name config changed; restarting"
            else
                log "$name is running but not answering on all its ports; restarting"
            fi
            "stop_$name"
        fi
        "start_$name"
        config_stamp "$name" >"$(stamp_file "$name")"
        restarted=yes
    done
    # Mail deferred while Dovecot was away goes out now rather than at the next retry.
    if [[ $restarted == yes ]] && postfix_pid >/dev/null; then
        postqueue -c "$POSTFIX_ETC" -f >/dev/null 2>&1 || true
    fi
    write_env
    log "up: IMAP $IMAP_PORT, IMAPS $IMAPS_PORT, LMTP $LMTP_PORT, SMTP $SMTP_PORT," \
        "submission $SUBMISSION_PORT, SMTPS $SMTPS_PORT on $HOST; env in $ENV_FILE"
}

cmd_down() {
    stop_postfix
    stop_dovecot
}

cmd_status() {
    local name rc=0 pid
    for name in dovecot postfix; do
        if healthy "$name"; then
            pid=$("${name}_pid")
            echo "$name: up (pid $pid; ports $("${name}_ports"))"
        elif pid=$("${name}_pid"); then
            echo "$name: running (pid $pid) but not answering on all of ports $("${name}_ports")"
            rc=1
        else
            echo "$name: down"
            rc=1
        fi
    done
    return $rc
}

cmd_clear() {
    (($#)) || die "usage: $0 clear ADDRESS..."
    dovecot_pid >/dev/null || die "dovecot is not running; run: $0 up"
    local addr
    for addr in "$@"; do
        doveadm -c "$DOVECOT_CONF" expunge -u "$addr" mailbox '*' all
    done
}

main() {
    local cmd=${1:-}
    (($#)) && shift
    case $cmd in
        install) cmd_install ;;
        up) check_settings && lock_dir && cmd_up ;;
        down) [[ -d $DIR ]] || exit 0; lock_dir && cmd_down ;;
        status) cmd_status ;;
        clear) cmd_clear "$@" ;;
        path) echo "$DIR" ;;
        *)
            echo "usage: $0 {install|up|down|status|clear ADDRESS...|path}" >&2
            exit 2
            ;;
    esac
}

main "$@"
