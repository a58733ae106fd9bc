# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_pop3_global_optspecs
    string join \n c/config= q/quiet v/verbose h/help V/version
end

function __fish_pop3_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_pop3_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_pop3_using_subcommand
    set -l cmd (__fish_pop3_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c pop3 -n "__fish_pop3_needs_command" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_needs_command" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_needs_command" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_needs_command" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_needs_command" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "fetch" -d 'Fetch new mail (from every account when none is named)'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "list" -d 'List the messages on the server: number, size, UIDL, new or seen, date, from, subject'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "check" -d 'Count new messages and bytes without downloading (exit 0: new mail, 1: none)'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "probe" -d 'Show a server\'s capabilities, login mechanisms, TLS version and certificates'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "accounts" -d 'Show the configured accounts with their resolved settings (secrets hidden)'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "password" -d 'Store or delete an account\'s password in the system keyring'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "import" -d 'Import accounts and the already-fetched messages from fetchmail, mpop or getmail'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "state" -d 'Show, export, import or change an account\'s seen-state (the UIDLs already fetched)'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "auth" -d 'Sign in to an OAuth account (Gmail, Microsoft 365) and store its tokens'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "init" -d 'Set up an account by answering questions: finds the server, shows its certificate, tries the login and adds the account to the config file'
complete -c pop3 -n "__fish_pop3_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l max-size -d 'Leave messages bigger than SIZE on the server (e.g. 25M, 500k; 1 to 1024G)' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l limit -d 'Fetch at most N messages per account in this run (N at least 1)' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -s j -l jobs -d 'Fetch up to N accounts in parallel (1 to 64)' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l daemon -d 'Keep running: fetch every INTERVAL (e.g. 5m; 1s to 30d) until SIGTERM or SIGINT' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l host -d 'The POP3 server' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l port -d 'The server\'s port [default: 995 for implicit TLS, 110 otherwise]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l user -d 'The login name' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l tls -d 'How to encrypt the connection' -r -f -a "implicit\t'TLS from the first byte (port 995)'
starttls\t'Plain connection upgraded with STLS before login (port 110); no fallback'
none\t'No encryption at all'"
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l ca-file -l tls-ca-file -d 'Trust this CA certificate (PEM) instead of the public roots' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l tls-fingerprint -d 'Trust the server\'s certificate by its SHA-256 fingerprint ("sha256:AB:CD:..."; as `pop3 probe` shows it), for a self-signed server; repeatable' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l password-command -d 'Run this command (with sh -c) and use the first line it prints as the password' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l auth -d 'The login mechanism: auto, scram-sha-256, scram-sha-1, cram-md5, apop, plain, login, user, xoauth2, oauthbearer [default: auto]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l timeout -d 'Give up when connecting, the TLS handshake or any reply takes longer (1s to 1h) [default: 60s]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l maildir -d 'Deliver into this Maildir (created when missing)' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l mbox -d 'Deliver into this mbox file (created when missing)' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l mda -d 'Deliver through this command (run with sh -c, message on stdin; %F is the sender)' -r
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l all -d 'Fetch every message, also those fetched before'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l keep -d 'Leave messages on the server (the default unless the config says keep = false)'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l delete -d 'Delete messages on the server once they are safely delivered'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l dry-run -d 'Connect, log in and print what would be fetched, skipped and deleted; change nothing'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -l json -d 'Print one JSON summary object per account on stdout'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l host -d 'The POP3 server' -r
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l port -d 'The server\'s port [default: 995 for implicit TLS, 110 otherwise]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l user -d 'The login name' -r
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l tls -d 'How to encrypt the connection' -r -f -a "implicit\t'TLS from the first byte (port 995)'
starttls\t'Plain connection upgraded with STLS before login (port 110); no fallback'
none\t'No encryption at all'"
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l ca-file -l tls-ca-file -d 'Trust this CA certificate (PEM) instead of the public roots' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l tls-fingerprint -d 'Trust the server\'s certificate by its SHA-256 fingerprint ("sha256:AB:CD:..."; as `pop3 probe` shows it), for a self-signed server; repeatable' -r
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l password-command -d 'Run this command (with sh -c) and use the first line it prints as the password' -r
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l auth -d 'The login mechanism: auto, scram-sha-256, scram-sha-1, cram-md5, apop, plain, login, user, xoauth2, oauthbearer [default: auto]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l timeout -d 'Give up when connecting, the TLS handshake or any reply takes longer (1s to 1h) [default: 60s]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l maildir -d 'Deliver into this Maildir (created when missing)' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l mbox -d 'Deliver into this mbox file (created when missing)' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l mda -d 'Deliver through this command (run with sh -c, message on stdin; %F is the sender)' -r
complete -c pop3 -n "__fish_pop3_using_subcommand list" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand list" -l json -d 'Print the listing as JSON lines, one object per message'
complete -c pop3 -n "__fish_pop3_using_subcommand list" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand list" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pop3 -n "__fish_pop3_using_subcommand list" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l host -d 'The POP3 server' -r
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l port -d 'The server\'s port [default: 995 for implicit TLS, 110 otherwise]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l user -d 'The login name' -r
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l tls -d 'How to encrypt the connection' -r -f -a "implicit\t'TLS from the first byte (port 995)'
starttls\t'Plain connection upgraded with STLS before login (port 110); no fallback'
none\t'No encryption at all'"
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l ca-file -l tls-ca-file -d 'Trust this CA certificate (PEM) instead of the public roots' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l tls-fingerprint -d 'Trust the server\'s certificate by its SHA-256 fingerprint ("sha256:AB:CD:..."; as `pop3 probe` shows it), for a self-signed server; repeatable' -r
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l password-command -d 'Run this command (with sh -c) and use the first line it prints as the password' -r
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l auth -d 'The login mechanism: auto, scram-sha-256, scram-sha-1, cram-md5, apop, plain, login, user, xoauth2, oauthbearer [default: auto]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l timeout -d 'Give up when connecting, the TLS handshake or any reply takes longer (1s to 1h) [default: 60s]' -r
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l maildir -d 'Deliver into this Maildir (created when missing)' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l mbox -d 'Deliver into this mbox file (created when missing)' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l mda -d 'Deliver through this command (run with sh -c, message on stdin; %F is the sender)' -r
complete -c pop3 -n "__fish_pop3_using_subcommand check" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand check" -l json -d 'Print one JSON object per account on stdout'
complete -c pop3 -n "__fish_pop3_using_subcommand check" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand check" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pop3 -n "__fish_pop3_using_subcommand check" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand probe" -l tls -d 'How to encrypt the connection when probing a HOST [default: starttls on port 110, implicit otherwise]' -r -f -a "implicit\t'TLS from the first byte (port 995)'
starttls\t'Plain connection upgraded with STLS before login (port 110); no fallback'
none\t'No encryption at all'"
complete -c pop3 -n "__fish_pop3_using_subcommand probe" -l ca-file -d 'Trust this CA certificate (PEM) instead of the public roots' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand probe" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand probe" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand probe" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pop3 -n "__fish_pop3_using_subcommand probe" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand accounts" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand accounts" -l check -d 'Only validate the config file (exit 78 on the first error)'
complete -c pop3 -n "__fish_pop3_using_subcommand accounts" -l json -d 'Print the accounts as JSON'
complete -c pop3 -n "__fish_pop3_using_subcommand accounts" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand accounts" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand accounts" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand accounts" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and not __fish_seen_subcommand_from set delete help" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand password; and not __fish_seen_subcommand_from set delete help" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and not __fish_seen_subcommand_from set delete help" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and not __fish_seen_subcommand_from set delete help" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and not __fish_seen_subcommand_from set delete help" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and not __fish_seen_subcommand_from set delete help" -f -a "set" -d 'Store the password (asked on the terminal, or the first line of standard input)'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and not __fish_seen_subcommand_from set delete help" -f -a "delete" -d 'Delete the stored password'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and not __fish_seen_subcommand_from set delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from set" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from set" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from set" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from delete" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from help" -f -a "set" -d 'Store the password (asked on the terminal, or the first line of standard input)'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete the stored password'
complete -c pop3 -n "__fish_pop3_using_subcommand password; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pop3 -n "__fish_pop3_using_subcommand import" -l state -d 'Where the program keeps its seen-state: fetchmail\'s idfile, mpop\'s UIDLs file, getmail\'s directory [default: where the program itself looks]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand import" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand import" -l dry-run -d 'Print the accounts, the options left out and the UIDLs found; write nothing'
complete -c pop3 -n "__fish_pop3_using_subcommand import" -l no-keyring -d 'Keep passwords found in the files in the config file (mode 0600) instead of trying the system keyring'
complete -c pop3 -n "__fish_pop3_using_subcommand import" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand import" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand import" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand import" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -a "list" -d 'Print each seen UIDL with the time it was first seen'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -a "export" -d 'Write the seen-state to standard output (for `pop3 state ACCOUNT import` elsewhere)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -a "import" -d 'Merge a file written by `export` (a UIDL seen in both keeps the earlier time)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -a "mark-all-seen" -d 'Record every message now on the server as seen, without downloading any'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -a "forget" -d 'Forget UIDLs: the next fetch takes those messages for new'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and not __fish_seen_subcommand_from list export import mark-all-seen forget help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from list" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from export" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from export" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from export" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from import" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from import" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from import" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from mark-all-seen" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from mark-all-seen" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from mark-all-seen" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from mark-all-seen" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from mark-all-seen" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from forget" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from forget" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from forget" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from forget" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from forget" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "list" -d 'Print each seen UIDL with the time it was first seen'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write the seen-state to standard output (for `pop3 state ACCOUNT import` elsewhere)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "import" -d 'Merge a file written by `export` (a UIDL seen in both keeps the earlier time)'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "mark-all-seen" -d 'Record every message now on the server as seen, without downloading any'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "forget" -d 'Forget UIDLs: the next fetch takes those messages for new'
complete -c pop3 -n "__fish_pop3_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pop3 -n "__fish_pop3_using_subcommand auth" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand auth" -l device -d 'Sign in with a code entered on any device (RFC 8628) [default when the provider has a device endpoint]'
complete -c pop3 -n "__fish_pop3_using_subcommand auth" -l browser -d 'Sign in in a browser on this machine, which returns to pop3 on 127.0.0.1 [default otherwise]'
complete -c pop3 -n "__fish_pop3_using_subcommand auth" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand auth" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand auth" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand auth" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand init" -s c -l config -d 'The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]' -r -F
complete -c pop3 -n "__fish_pop3_using_subcommand init" -s q -l quiet -d 'Print only errors'
complete -c pop3 -n "__fish_pop3_using_subcommand init" -s v -l verbose -d 'Say what is fetched (-v); trace the protocol with secrets hidden (-vv)'
complete -c pop3 -n "__fish_pop3_using_subcommand init" -s h -l help -d 'Print help'
complete -c pop3 -n "__fish_pop3_using_subcommand init" -s V -l version -d 'Print version'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "fetch" -d 'Fetch new mail (from every account when none is named)'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "list" -d 'List the messages on the server: number, size, UIDL, new or seen, date, from, subject'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "check" -d 'Count new messages and bytes without downloading (exit 0: new mail, 1: none)'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "probe" -d 'Show a server\'s capabilities, login mechanisms, TLS version and certificates'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "accounts" -d 'Show the configured accounts with their resolved settings (secrets hidden)'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "password" -d 'Store or delete an account\'s password in the system keyring'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "import" -d 'Import accounts and the already-fetched messages from fetchmail, mpop or getmail'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "state" -d 'Show, export, import or change an account\'s seen-state (the UIDLs already fetched)'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "auth" -d 'Sign in to an OAuth account (Gmail, Microsoft 365) and store its tokens'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "init" -d 'Set up an account by answering questions: finds the server, shows its certificate, tries the login and adds the account to the config file'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and not __fish_seen_subcommand_from fetch list check probe accounts password import state auth init help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and __fish_seen_subcommand_from password" -f -a "set" -d 'Store the password (asked on the terminal, or the first line of standard input)'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and __fish_seen_subcommand_from password" -f -a "delete" -d 'Delete the stored password'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and __fish_seen_subcommand_from state" -f -a "list" -d 'Print each seen UIDL with the time it was first seen'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and __fish_seen_subcommand_from state" -f -a "export" -d 'Write the seen-state to standard output (for `pop3 state ACCOUNT import` elsewhere)'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and __fish_seen_subcommand_from state" -f -a "import" -d 'Merge a file written by `export` (a UIDL seen in both keeps the earlier time)'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and __fish_seen_subcommand_from state" -f -a "mark-all-seen" -d 'Record every message now on the server as seen, without downloading any'
complete -c pop3 -n "__fish_pop3_using_subcommand help; and __fish_seen_subcommand_from state" -f -a "forget" -d 'Forget UIDLs: the next fetch takes those messages for new'
# The account names in the config (POP3_CONFIG or the default file).
complete -c pop3 -n "__fish_pop3_using_subcommand fetch" -f -a "(pop3 accounts --names 2>/dev/null)" -d 'account'
complete -c pop3 -n "__fish_pop3_using_subcommand list" -f -a "(pop3 accounts --names 2>/dev/null)" -d 'account'
complete -c pop3 -n "__fish_pop3_using_subcommand check" -f -a "(pop3 accounts --names 2>/dev/null)" -d 'account'
complete -c pop3 -n "__fish_pop3_using_subcommand probe" -f -a "(pop3 accounts --names 2>/dev/null)" -d 'account'
