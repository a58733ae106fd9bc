//! `pop3 generate man|completions SHELL`: the man page and shell completions, generated from
//! the clap definition so they can never drift from `--help`. The committed copies in `man/`
//! and `completions/` are checked by a test (tests/generated.rs).

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Generate, GenerateArgs};

/// Run `pop3 generate`.
pub fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    match &args.what {
        Generate::Man => man(&mut out)?,
        Generate::Completions { shell } => out = completions(*shell)?.into_bytes(),
    }
    super::write_stdout_bytes(&out);
    Ok(ExitCode::SUCCESS)
}

/// The subcommands whose first positional argument is an account name; their completions
/// offer the names in the user's config, asked from `pop3 accounts --names` at completion
/// time (the committed scripts cannot know them).
const ACCOUNT_COMMANDS: [&str; 4] = ["fetch", "list", "check", "probe"];

/// The completion script for `shell`: clap_complete's, for the command without its hidden
/// subcommands (clap_complete offers those too), with account names added.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<String> {
    let full = Cli::command();
    let mut cmd = visible(&full)
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pop3", &mut out);
    let script = String::from_utf8(out)?;
    let ids: Vec<String> = ACCOUNT_COMMANDS
        .iter()
        .map(|name| account_arg(&full, name))
        .collect();
    let done = match shell {
        clap_complete::Shell::Bash => bash_accounts(&script),
        clap_complete::Shell::Zsh => zsh_accounts(&script, &ids),
        clap_complete::Shell::Fish => Some(fish_accounts(&script)),
        _ => Some(script.clone()),
    };
    // The scripts are edited where clap_complete writes known text; if a new clap_complete
    // writes something else, say so instead of shipping completions without accounts.
    done.ok_or_else(|| {
        anyhow::anyhow!("clap_complete's {shell} script changed: update cmd/generate.rs")
    })
}

/// `cmd` without its hidden subcommands and arguments, which clap_complete would offer:
/// names, about texts, arguments and subcommands are all a completion script uses.
fn visible(cmd: &clap::Command) -> clap::Command {
    clap::Command::new(cmd.get_name().to_owned().leak() as &str)
        .about(cmd.get_about().cloned().unwrap_or_default())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(visible),
        )
}

/// The id of the account argument of subcommand `name`.
fn account_arg(cmd: &clap::Command, name: &str) -> String {
    cmd.find_subcommand(name)
        .and_then(|s| s.get_positionals().next())
        .map(|a| a.get_id().to_string())
        .unwrap_or_default()
}

/// bash: in the branch of each account command, a word that is not an option (and not the
/// value of one) completes to an account name instead of the list of options.
fn bash_accounts(script: &str) -> Option<String> {
    const FIRST: &str = "            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then\n";
    const REST: &str = "                *)\n                    COMPREPLY=()\n                    ;;\n            esac\n            COMPREPLY=( $(compgen -W \"${opts}\" -- \"${cur}\") )\n";
    let mut out = script.to_owned();
    for name in ACCOUNT_COMMANDS {
        let head = format!("        pop3__subcmd__{name})\n");
        let start = out.find(&head)?;
        let len = out[start..].find("            return 0\n            ;;\n")?;
        let block = &out[start..start + len];
        if !block.contains(FIRST) || !block.contains(REST) {
            return None;
        }
        let new = block
            .replace(FIRST, "            if [[ ${cur} == -* ]] ; then\n")
            .replace(
                REST,
                "                *)\n                    COMPREPLY=( $(compgen -W \"$(_pop3_accounts)\" -- \"${cur}\") )\n                    ;;\n            esac\n",
            );
        out.replace_range(start..start + len, &new);
    }
    let register = out.rfind("if [[ \"${BASH_VERSINFO[0]}\" -eq 4")?;
    out.insert_str(register, BASH_ACCOUNTS);
    Some(out)
}

const BASH_ACCOUNTS: &str = r#"# The account names in the config (-c/--config on the line, else POP3_CONFIG or the default).
_pop3_accounts() {
    local i config=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -c|--config) config=(--config "${COMP_WORDS[i+1]}") ;;
            --config=*) config=("${COMP_WORDS[i]}") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${config[@]}" accounts --names 2>/dev/null
}

"#;

/// zsh: the account arguments complete with `_pop3_accounts` instead of `_default`.
fn zsh_accounts(script: &str, ids: &[String]) -> Option<String> {
    let mut out = String::with_capacity(script.len() + 512);
    let mut replaced = 0;
    for line in script.split_inclusive('\n') {
        let is_account = ids.iter().any(|id| {
            let spec = line.trim_start_matches(['\'', '*', ':']);
            line.starts_with('\'') && spec.starts_with(&format!("{id} -- "))
        });
        match line.strip_suffix(":_default' \\\n") {
            Some(head) if is_account => {
                out.push_str(head);
                out.push_str(":_pop3_accounts' \\\n");
                replaced += 1;
            }
            _ => out.push_str(line),
        }
    }
    if replaced < ACCOUNT_COMMANDS.len() {
        return None;
    }
    let register = out.rfind("if [ \"$funcstack[1]\" = \"_pop3\" ]; then")?;
    out.insert_str(register, ZSH_ACCOUNTS);
    Some(out)
}

const ZSH_ACCOUNTS: &str = r#"# The account names in the config (POP3_CONFIG or the default file).
(( $+functions[_pop3_accounts] )) ||
_pop3_accounts() {
    local -a names
    names=(${(f)"$(pop3 accounts --names 2>/dev/null)"})
    _describe -t accounts 'account' names
}

"#;

/// fish: the account commands offer the account names.
fn fish_accounts(script: &str) -> String {
    let mut out = script.to_owned();
    out.push_str("# The account names in the config (POP3_CONFIG or the default file).\n");
    for name in ACCOUNT_COMMANDS {
        out.push_str(&format!(
            "complete -c pop3 -n \"__fish_pop3_using_subcommand {name}\" -f -a \"(pop3 accounts --names 2>/dev/null)\" -d 'account'\n"
        ));
    }
    out
}

/// The whole man page: clap's sections, one section per subcommand, then the config file,
/// files, environment and exit codes.
pub fn man(w: &mut dyn Write) -> std::io::Result<()> {
    let cmd = Cli::command();
    let page = clap_mangen::Man::new(cmd.clone()).manual("pop3 manual");
    page.render_title(w)?;
    // clap_mangen would put the whole `about` paragraph on the NAME line; whatis(1) and
    // apropos(1) want a name and a short phrase.
    writeln!(w, ".SH NAME")?;
    writeln!(
        w,
        "pop3 \\- fetch mail from POP3 servers into a Maildir, an mbox or a command"
    )?;
    page.render_synopsis_section(w)?;
    page.render_description_section(w)?;
    w.write_all(DESCRIPTION.as_bytes())?;
    page.render_options_section(w)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(w, ".SH \"POP3 {}\"", sub.get_name().to_uppercase())?;
        let usage = sub
            .clone()
            .bin_name(format!("pop3 {}", sub.get_name()))
            .render_usage()
            .to_string();
        let usage = usage.trim_start_matches("Usage: ");
        writeln!(w, "\\fB{}\\fR", roff_escape(usage))?;
        writeln!(w, ".PP")?;
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            writeln!(w, "{}", roff_escape(&about.to_string()))?;
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version" | "config" | "quiet" | "verbose") {
                continue;
            }
            let mut flag = String::new();
            if let Some(short) = arg.get_short() {
                flag.push_str(&format!("\\fB-{short}\\fR, "));
            }
            match arg.get_long() {
                Some(long) => flag.push_str(&format!("\\fB--{long}\\fR")),
                None => flag.push_str(&format!("\\fI{}\\fR", id.to_uppercase())),
            }
            if arg.get_long().is_some()
                && arg.get_action().takes_values()
                && let Some(names) = arg.get_value_names()
            {
                flag.push_str(&format!(" \\fI{}\\fR", names.join(" ")));
            }
            writeln!(w, ".TP\n{flag}")?;
            if let Some(help) = arg.get_long_help().or(arg.get_help()) {
                writeln!(w, "{}", roff_escape(&help.to_string()))?;
            }
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| format!("\\fB{}\\fR", v.get_name()))
                .collect();
            if !values.is_empty() && arg.get_action().takes_values() && id != "shell" {
                writeln!(w, "One of {}.", values.join(", "))?;
            }
        }
        for action in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            let usage = action
                .clone()
                .bin_name(format!("pop3 {} {}", sub.get_name(), action.get_name()))
                .render_usage()
                .to_string();
            writeln!(
                w,
                ".TP\n\\fB{}\\fR",
                roff_escape(usage.trim_start_matches("Usage: "))
            )?;
            if let Some(about) = action.get_about() {
                writeln!(w, "{}", roff_escape(&about.to_string()))?;
            }
        }
    }
    w.write_all(REFERENCE.as_bytes())?;
    page.render_version_section(w)?;
    Ok(())
}

/// Escape text for roff: backslashes, and a leading `.` or `'` that would be a request.
fn roff_escape(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    s.lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const DESCRIPTION: &str = r#".PP
\fBpop3\fR logs in to POP3 servers (RFC 1939) over verified TLS, downloads the messages it
has not fetched before (tracked by UIDL) and delivers them into a Maildir, an mbox file or a
delivery command such as procmail. A message is recorded as fetched only after its delivery
is durable, and deleted on the server only after that, so a crash or a dropped connection
causes at most one duplicate and never a lost or partial message.
"#;

const REFERENCE: &str = r#".SH CONFIGURATION
The config file is TOML. A \fB[defaults]\fR table holds keys every account inherits; each
\fB[accounts.\fINAME\fB]\fR table is one account. Unknown keys are errors that name the
file, the line and the key. Durations are a number and a unit (\fBms\fR, \fBs\fR, \fBm\fR,
\fBh\fR, \fBd\fR); sizes a number with an optional \fBk\fR, \fBM\fR or \fBG\fR. Each
duration, size and port has the range given below; a value outside it is an error that
names the file, the line and the key (exit code 78).
.PP
.nf
[defaults]
tls = "implicit"
deliver.maildir = "~/Mail/inbox"

[accounts.work]
host = "pop.example.com"
user = "alice@example.com"
password.command = ["pass", "show", "mail/work"]
delete_after = "14d"
.fi
.TP
\fBhost\fR
The POP3 server. Required.
.TP
\fBport\fR
Its port, 1 to 65535. Default 995 with \fBtls = "implicit"\fR, else 110.
.TP
\fBuser\fR
The login name. Required.
.TP
\fBtls\fR
\fB"implicit"\fR (TLS from the first byte), \fB"starttls"\fR (plain, then STLS, which must
succeed: a server that does not offer it is an error) or \fB"none"\fR. Default implicit.
.TP
\fBtls_ca_file\fR
Trust the CA certificates in this PEM file instead of the built-in public roots.
.TP
\fBtls_fingerprint\fR
A SHA-256 fingerprint, or a list of them, of the server certificate or of its public key,
as \fB"sha256:AB:CD:..."\fR. When set, it replaces the CA check; the handshake signature is
still verified. This is how to trust a self-signed server.
.TP
\fBtls_min_version\fR
\fB"1.2"\fR (default) or \fB"1.3"\fR.
.TP
\fBtls_cert_file\fR, \fBtls_key_file\fR
A client certificate chain and its key (PEM).
.TP
\fBpassword\fR
The password itself. Refused when the config file can be read by group or others.
.TP
\fBpassword.command\fR
A command whose first line of output is the password: an array of arguments (run without a
shell) or a string (run with \fBsh -c\fR). Its output may be at most 64 KiB. Unless standard
input is a terminal (so that it can prompt there), it runs in a process group of its own.
.TP
\fBpassword.timeout\fR
How long \fBpassword.command\fR may run: 1s to 1h. When it has not finished by then (a pinentry waiting
for a terminal under cron, say), it and every process it started are ended (SIGTERM, then
SIGKILL) and the account fails with exit code 75, naming the account and the command. Default
\fB"60s"\fR.
.TP
\fBpassword.env\fR
The name of an environment variable holding the password.
.TP
\fBpassword.keyring = true\fR
The system keyring (Secret Service on Linux, Keychain on macOS), where \fBpop3 password set
\fIACCOUNT\fR stores it (service \fBpop3\fR, user \fIlogin\fB@\fIhost\fR). Without a
session bus (cron, ssh) this fails at once with a message naming the other sources.
.TP
\fBpassword.prompt = true\fR
Ask on the terminal.
.PP
With no password key, \fBPOP3_PASSWORD\fR is used if set, else a prompt when standard input
is a terminal; otherwise the account fails with exit code 78. No process that pop3 starts (a
password command, a delivery command and whatever they run) inherits \fBPOP3_PASSWORD\fR or
a variable that some account names in \fBpassword.env\fR.
.TP
\fBauth\fR
\fB"auto"\fR (default: the strongest mechanism both sides offer) or one of
\fBscram-sha-256\fR, \fBscram-sha-1\fR, \fBcram-md5\fR, \fBapop\fR, \fBplain\fR, \fBlogin\fR,
\fBuser\fR, \fBxoauth2\fR, \fBoauthbearer\fR. A named mechanism the server lacks is an error;
there is no silent fallback. For the OAuth mechanisms, either an \fBoauth\fR table (pop3
gets and refreshes the token itself) or the password source yields the token.
.TP
\fBoauth.provider\fR
\fB"google"\fR or \fB"microsoft"\fR: their endpoints and scopes (Gmail's
https://mail.google.com/; Microsoft's https://outlook.office.com/POP.AccessAsUser.All and
offline_access). Without it, set \fBoauth.token_url\fR, \fBoauth.auth_url\fR and/or
\fBoauth.device_url\fR, and \fBoauth.scopes\fR (https URLs only); each also overrides the preset.
Needs \fBauth = "xoauth2"\fR or \fB"oauthbearer"\fR and no \fBpassword\fR.
Run \fBpop3 auth ACCOUNT\fR once to sign in.
.TP
\fBoauth.client_id\fR, \fBoauth.client_secret\fR
The registered client (see the README). The secret is optional and takes the same forms as
\fBpassword\fR (a literal, \fB.command\fR, \fB.env\fR, \fB.keyring = true\fR).
.TP
\fBoauth.token_store\fR
Where \fBpop3 auth\fR keeps the refresh token: \fB"keyring"\fR, \fB"file"\fR (0600, in the
state directory) or \fB"auto"\fR (default: the keyring if it answers, else the file). The
access token and its expiry are always in the file \fI<account>.oauth\fR there.
.TP
\fBoauth.tls_ca_file\fR
Trust only this CA for the OAuth endpoints (default: the public roots).
.TP
\fBallow_plaintext_password\fR
With \fBtls = "none"\fR, allow mechanisms that reveal the password (USER, PLAIN, LOGIN).
Default false.
.TP
\fBtimeout\fR
Connecting, the TLS handshake and every read and write must finish within this: 1s to 1h.
Default \fB"60s"\fR.
.TP
\fBkeep\fR
Leave messages on the server. Default true. When false, each message is deleted once it is
delivered and recorded, and so are messages recorded by earlier runs.
.TP
\fBdelete_after\fR
With \fBkeep\fR, delete messages first fetched at least this long ago: 0 to 36500d (100
years); 0 deletes each message once it is fetched.
.TP
\fBmax_size\fR
Leave messages bigger than this on the server and report each of them once (also with
\fB\-q\fR): 1 to 1024G.
.TP
\fBadd_received\fR
Prepend a \fBReceived:\fR header naming the server, pop3 and the UIDL. Default true.
.TP
\fBdeliver.maildir\fR
Deliver into this Maildir; it is created when missing.
.TP
\fBdeliver.mbox\fR
Deliver into this mbox file (mboxrd quoting, fcntl and dot-lock locking).
.TP
\fBdeliver.mda\fR
Deliver by running this command with the message on standard input: an array of arguments
or a string for \fBsh -c\fR. \fB%F\fR is replaced by the envelope sender from
\fBReturn-Path:\fR when that is a plain address: ASCII letters, digits and
\fB@ . _ + = -\fR only, not starting with \fB-\fR. Any other sender (one with quotes,
\fB$\fR, a backquote, spaces or any other character a shell might act on) becomes
\fBMAILER-DAEMON\fR for \fB%F\fR, so \fB%F\fR is safe anywhere in a \fBsh -c\fR string,
quoted or not; no quotes are added. The command's environment has \fBPOP3_SENDER\fR (the
sender as found, \fBMAILER-DAEMON\fR when there is none), \fBPOP3_ACCOUNT\fR,
\fBPOP3_UIDL\fR and \fBPOP3_SIZE\fR. Exit 0 means delivered, 75 means try again later,
anything else is a failure. The command runs in a process group of its own; when it exits,
anything it left running in the background is ended.
.TP
\fBdeliver.lmtp\fR
Deliver through an LMTP server (Dovecot, Cyrus): \fB"unix:/run/dovecot/lmtp"\fR or
\fB"host:port"\fR (port 24 when left out). Each reply after the message must be 2xx before
the message is recorded; see \fBdeliver.smtp\fR for the rest.
.TP
\fBdeliver.smtp\fR
Deliver through an SMTP server, as fetchmail does: \fB"host"\fR or \fB"host:port"\fR (port
25 when left out). EHLO, PIPELINING, 8BITMIME and SMTPUTF8 when offered; the envelope sender
is the \fBReturn-Path:\fR address, else \fB<>\fR. A refused recipient means no DATA. 4xx:
the message stays on the server and the run ends with exit 75; 5xx: it stays, is reported
once, and that run ends with exit 74 (later runs try it again without reporting it or
failing, until it is delivered or gone; a side file next to the seen-state remembers it);
the other messages go on. A message is never deleted unless
delivered. With LMTP and several recipients, a message some refuse after DATA stays
unrecorded and the retry gives those that accepted a second copy.
.TP
\fBdeliver.recipient\fR
With \fBdeliver.lmtp\fR or \fBdeliver.smtp\fR: the envelope recipient(s), a string or an
array. Default: the local user (\fB$USER\fR).
.TP
\fBdeliver.starttls\fR
With \fBdeliver.smtp\fR: require STARTTLS, checked against \fBtls_ca_file\fR or the
public roots. Default \fBfalse\fR.
.TP
\fBdeliver.auth_user\fR
With \fBdeliver.lmtp\fR or \fBdeliver.smtp\fR: log in to the server with SMTP AUTH (RFC
4954) as this user, after EHLO and STARTTLS: PLAIN when the server offers it, else LOGIN.
Refused (exit 78, before AUTH) without \fBdeliver.starttls\fR unless
\fBdeliver.auth_plaintext\fR is set. A server refusing the login (535) ends the account's
run with exit 74 (a delivery failure, not exit 77, which is for the POP3 login), nothing
recorded or deleted; a 4xx answer ends it with exit 75. The password never appears in
\fB-vv\fR output or in messages.
.TP
\fBdeliver.auth_password\fR
The password of \fBdeliver.auth_user\fR, in the forms \fBpassword\fR takes: a string (in a
file only its owner can read), \fBdeliver.auth_password.command\fR (with \fB.timeout\fR),
\fB.env\fR or \fB.prompt = true\fR; not \fB.keyring\fR, which holds the POP3 password. It
is obtained once per run, before the POP3 server is contacted.
.TP
\fBdeliver.auth_plaintext\fR
Allow SMTP AUTH without STARTTLS (a unix: socket, or a server without TLS): the password
crosses the connection unencrypted. Default \fBfalse\fR.
.TP
\fBmda_timeout\fR
How long the delivery command may take per message: 1s to 24h. When it runs longer, its
whole process group is ended (SIGTERM, then SIGKILL half a second later) and the message stays
on the server for the next run (exit 75). It also bounds an LMTP or SMTP server's answer to a
message, and the \fBfilter\fR per message. Default \fB"5m"\fR.
.TP
\fBkeepalive\fR
While a slow delivery (command, LMTP, SMTP) runs, send the POP3 server a NOOP this often, so
that it does not drop the idle session: 1s to 1h. Default \fB"30s"\fR.
.TP
\fBkillsize\fR
Delete new messages bigger than this on the server without fetching them: 1 to 1024G.
Default none.
.TP
\fBfilter\fR
A command (array or \fBsh -c\fR string) that gets each new message's header (\fBTOP n 0\fR)
on standard input and \fBPOP3_ACCOUNT\fR, \fBPOP3_UIDL\fR, \fBPOP3_SIZE\fR and
\fBPOP3_SENDER\fR in its environment. Exit 0 fetches the message, 1 deletes it unfetched, 2
leaves it and skips it from now on; anything else is an error for that message (exit 74 at
the end). \fBpop3 fetch \-\-dry\-run\fR and \fBpop3 list\fR show the decisions.
.PP
Paths in the config file (\fBdeliver.maildir\fR, \fBdeliver.mbox\fR, \fBtls_ca_file\fR,
\fBtls_cert_file\fR, \fBtls_key_file\fR) may start with \fB~/\fR or \fB$HOME/\fR; nothing
else is expanded, and a relative path is an error (it would depend on the directory pop3 runs
in, which differs under cron). Paths on the command line may also start with \fB~\fR (also
after \fB\-\-maildir=\fR) and are otherwise taken relative to the current directory.
.PP
Two accounts that log in as the same user on the same server and port share one seen-state:
a message fetched by one is seen by the other, which then never delivers it (as with mpop).
\fBpop3 accounts\fR and \fBpop3 fetch\fR warn about such accounts.
.SH EXAMPLES
A first fetch, without a config file (the password is asked on the terminal):
.PP
.nf
pop3 fetch \-\-host pop.example.com \-\-user alice \-\-maildir ~/Mail/inbox
.fi
.PP
A self-signed server, trusted by the fingerprint \fBpop3 probe\fR shows:
.PP
.nf
pop3 probe mail.home.lan
pop3 fetch \-\-host mail.home.lan \-\-user alice \-\-tls\-fingerprint sha256:AB:CD:... \e
    \-\-password\-command 'pass show mail/home' \-\-maildir ~/Mail/home
.fi
.PP
A config file with two accounts, checked before use:
.PP
.nf
[accounts.work]
host = "pop.example.com"
user = "alice@example.com"
password.command = ["pass", "show", "mail/work"]
deliver.maildir = "~/Mail/work"

[accounts.home]
host = "mail.example.org"
tls = "starttls"
user = "alice"
password.keyring = true
deliver.mda = ["procmail", "\-d", "alice"]

$ pop3 accounts \-\-check
$ pop3 password set home
.fi
.PP
Every ten minutes from cron (silent unless something fails):
.PP
.nf
*/10 * * * * pop3 \-q fetch
.fi
.PP
A systemd user timer, \fI~/.config/systemd/user/pop3.service\fR and \fIpop3.timer\fR:
.PP
.nf
[Service]
Type=oneshot
ExecStart=%h/.cargo/bin/pop3 \-q fetch

[Timer]
OnBootSec=2m
OnUnitActiveSec=10m
[Install]
WantedBy=timers.target

$ systemctl \-\-user enable \-\-now pop3.timer
.fi
.PP
Or a long-running service with \fBExecStart=%h/.cargo/bin/pop3 fetch \-\-daemon 10m\fR;
SIGTERM while it waits ends it with exit code 0.
.PP
Delivery through procmail, which sees the sender, the account and the UIDL:
.PP
.nf
deliver.mda = ["procmail", "\-f", "%F"]
# in ~/.procmailrc: POP3_ACCOUNT, POP3_UIDL, POP3_SIZE and POP3_SENDER are set
.fi
.SH FILES
.TP
\fI$XDG_CONFIG_HOME/pop3/config.toml\fR (default \fI~/.config/pop3/config.toml\fR)
The config file.
.TP
\fI$XDG_STATE_HOME/pop3/\fR (default \fI~/.local/state/pop3/\fR)
One \fIuser@host_port\fB.uidl\fR file per account with the UIDLs already delivered and when
each was first seen, and a \fB.lock\fR file that keeps two runs from fetching one account at
once. The run holding the lock writes its pid, start time and host into the lock file; a
second run names them in its "already fetching" message. A \fB.too\-big\fR file lists the
messages over \fBmax_size\fR that were already reported, so that each is reported once.
.SH ENVIRONMENT
.TP
\fBPOP3_CONFIG\fR
The config file, as \fB-c\fR.
.TP
\fBPOP3_PASSWORD\fR
The password for accounts that configure no password source. Removed from the environment of
every command pop3 runs.
.TP
\fBRUST_LOG\fR
Finer control of the diagnostic output (e.g. \fBpop3=debug\fR).
.TP
\fBHOME\fR, \fBXDG_CONFIG_HOME\fR, \fBXDG_STATE_HOME\fR
Where the config and state live.
.SH "EXIT STATUS"
.TP
\fB0\fR
Success, with or without new mail (\fBcheck\fR: new mail is waiting).
.TP
\fB1\fR
\fBcheck\fR only: no new mail.
.TP
\fB64\fR
Bad command-line usage.
.TP
\fB65\fR
The server sent data that cannot be accepted (bad UIDL list, sizes that lie).
.TP
\fB69\fR
Unavailable: host unreachable, TLS handshake or certificate failed, STLS or UIDL missing,
[SYS/PERM].
.TP
\fB70\fR
Internal error (a bug: please report it).
.TP
\fB73\fR
The delivery target cannot be created or opened.
.TP
\fB74\fR
Delivery or state I/O failed, or the delivery command failed.
.TP
\fB75\fR
Temporary failure: timeout, dropped connection, [IN-USE], [LOGIN-DELAY], [SYS/TEMP], lock
held, the delivery command exited 75, or a signal.
.TP
\fB76\fR
The server broke the protocol.
.TP
\fB77\fR
Authentication refused, or no acceptable login mechanism.
.TP
\fB78\fR
Configuration error.
.PP
With several accounts every account is tried; the exit code is that of the first account,
in config order, that failed.
.SH "SEE ALSO"
\fBfetchmail\fR(1), \fBmpop\fR(1), \fBgetmail\fR(1), \fBprocmail\fR(1)
"#;

#[cfg(test)]
mod tests {
    use super::REFERENCE;
    use crate::config::range::{self, DeleteAfter, MaxSize, MdaTimeout, PasswordTimeout, Timeout};

    /// The ranges the man page and the README state are the ones the parser enforces.
    #[test]
    fn documented_ranges_are_the_enforced_ones() {
        let readme = include_str!("../../README.md");
        let port = format!("{} to {}", range::PORT.start(), range::PORT.end());
        for (key, range) in [
            ("timeout", Timeout::range_text()),
            ("mda_timeout", MdaTimeout::range_text()),
            ("password.timeout", PasswordTimeout::range_text()),
            ("delete_after", DeleteAfter::range_text()),
            ("max_size", MaxSize::range_text()),
            ("port", port),
        ] {
            let man = REFERENCE
                .split(&format!("\\fB{key}\\fR\n"))
                .nth(1)
                .and_then(|s| s.split(".TP").next())
                .unwrap_or_else(|| panic!("{key} is not in the man page"));
            assert!(
                man.contains(&range),
                "man page, {key}: want {range:?} in {man:?}"
            );
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{key}` |")))
                .unwrap_or_else(|| panic!("{key} is not in the README table"));
            assert!(
                row.contains(&range),
                "README, {key}: want {range:?} in {row:?}"
            );
        }
    }
}
