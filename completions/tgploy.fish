# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tgploy_global_optspecs
    string join \n config= database= v/verbose q/quiet otp= h/help V/version
end

function __fish_tgploy_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tgploy_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tgploy_using_subcommand
    set -l cmd (__fish_tgploy_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tgploy -n "__fish_tgploy_needs_command" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_needs_command" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_needs_command" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_needs_command" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_needs_command" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_needs_command" -s V -l version -d 'Print version'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "sync" -d 'Deliver every new object version of the enabled buckets'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "retry" -d 'Deliver failed deliveries whose next attempt is due'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "heartbeat" -d 'Send the daily summary to the admin chat'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "serve-webhook" -d 'Receive bucket notifications and deliver new objects within seconds'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "dashboard" -d 'Serve the web dashboard: what reached Telegram, at a glance, from a browser'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "probe" -d 'Check that a running `serve-webhook` or `dashboard` answers, for healthchecks'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "buckets" -d 'List, enable or disable buckets'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "setup" -d 'Guided first run: checks S3 and Telegram, writes a private config, enrols a second factor'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "doctor" -d 'Check an existing configuration: config file, ledger, S3, buckets, bot, chats, clock'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "status" -d 'Show buckets, delivered counts and bytes, the retry queue and the last sync'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "files" -d 'List delivered objects: when, in how many parts, message ids and SHA-256'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "restore" -d 'Rebuild a delivered object from Telegram, checked part by part'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "join" -d 'Join parts downloaded by hand from a Telegram client, or open a pack'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "verify" -d 'Restore drill: download the parts of delivered objects and check their hashes'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "ledger" -d 'The ledger itself: send a snapshot of it to the admin chat'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c tgploy -n "__fish_tgploy_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -s b -l bucket -d 'Only this bucket (repeatable). It must exist and be enabled' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -l dry-run -d 'List what would be sent; send nothing and write nothing'
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -l json -d 'Print a JSON summary on stdout instead of text'
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -l id -d 'Retry only this delivery (repeatable; ids are in `tgploy status`), whatever its schedule' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -l now -d 'Ignore the backoff schedule: retry every failed delivery now'
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -l dead -d 'Revive dead deliveries (all, or those given with --id) with a fresh count of attempts, and retry them'
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -l json -d 'Print a JSON summary on stdout instead of text'
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand retry" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand heartbeat" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand heartbeat" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand heartbeat" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand heartbeat" -l dry-run -d 'Print the summary instead of sending it'
complete -c tgploy -n "__fish_tgploy_using_subcommand heartbeat" -l json -d 'Print the summary as JSON on stdout (and send it unless --dry-run)'
complete -c tgploy -n "__fish_tgploy_using_subcommand heartbeat" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand heartbeat" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand heartbeat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -l listen -d 'Address to listen on [default: `webhook.listen` or TGPLOY_WEBHOOK_LISTEN, else 127.0.0.1:8080]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -l concurrency -d 'Deliveries to run at once [default: `webhook.concurrency` or TGPLOY_WEBHOOK_CONCURRENCY, else 2]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -l insecure-no-token -d 'Run without a token (only on a loopback address): anyone who can reach the port can queue deliveries'
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand serve-webhook" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand dashboard" -l listen -d 'Address to listen on [default: `dashboard.listen` or TGPLOY_DASHBOARD_LISTEN, else 127.0.0.1:8088]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand dashboard" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand dashboard" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand dashboard" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand dashboard" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand dashboard" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand dashboard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand probe" -l timeout -d 'How long to wait for the answer (`5s`, `500ms`)' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand probe" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand probe" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand probe" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand probe" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand probe" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -f -a "list" -d 'List the buckets on the server and whether each is enabled'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -f -a "enable" -d 'Enable a bucket: its objects are delivered by the next `sync`'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -f -a "disable" -d 'Disable a bucket: `sync` no longer delivers its objects'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and not __fish_seen_subcommand_from list enable disable help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from list" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from list" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from list" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from list" -l json -d 'JSON on stdout instead of a table'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from enable" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from enable" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from enable" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from enable" -l from-now -d 'Record the bucket\'s current objects as skipped: only objects created or overwritten from now on are delivered'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from enable" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from enable" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from disable" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from disable" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from disable" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from disable" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from disable" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the buckets on the server and whether each is enabled'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable a bucket: its objects are delivered by the next `sync`'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable a bucket: `sync` no longer delivers its objects'
complete -c tgploy -n "__fish_tgploy_using_subcommand buckets; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l s3-endpoint -d 'S3 endpoint URL [env: RUSTFS_ENDPOINT]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l s3-region -d 'S3 region [env: RUSTFS_REGION] [default: us-east-1]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l s3-access-key -d 'S3 access key [env: RUSTFS_ACCESS_KEY]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l api-url -d 'Bot API server, for a self-hosted one [env: TELEGRAM_API_URL]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l backup-chat-id -d 'Backup chat id [env: TELEGRAM_BACKUP_CHAT_ID]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l admin-chat-id -d 'Admin chat id [env: TELEGRAM_ADMIN_CHAT_ID]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l part-size -d 'Part size, e.g. 19MiB [env: TGPLOY_PART_SIZE]' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l non-interactive -d 'Take every answer from flags and the environment (RUSTFS_*, TELEGRAM_*), run the same checks and write the same file: for configuration management'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l no-totp -d 'Do not enrol a second factor'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -l force -d 'With --non-interactive: replace an existing config file (kept as a backup)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -f -a "totp" -d 'Manage the second factor'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -f -a "dashboard" -d 'Set the web dashboard\'s password (stored as an argon2id hash in the ledger)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and not __fish_seen_subcommand_from totp dashboard help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from totp" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from totp" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from totp" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from totp" -l reset -d 'Enrol a new secret and new recovery codes (needs a current code or a recovery code)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from totp" -l non-interactive -d 'Take every answer from flags and the environment (RUSTFS_*, TELEGRAM_*), run the same checks and write the same file: for configuration management'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from totp" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from totp" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from totp" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from dashboard" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from dashboard" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from dashboard" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from dashboard" -l non-interactive -d 'Take every answer from flags and the environment (RUSTFS_*, TELEGRAM_*), run the same checks and write the same file: for configuration management'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from dashboard" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from dashboard" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from dashboard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from help" -f -a "totp" -d 'Manage the second factor'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from help" -f -a "dashboard" -d 'Set the web dashboard\'s password (stored as an argon2id hash in the ledger)'
complete -c tgploy -n "__fish_tgploy_using_subcommand setup; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tgploy -n "__fish_tgploy_using_subcommand doctor" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand doctor" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand doctor" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand doctor" -l json -d 'JSON on stdout instead of the checklist'
complete -c tgploy -n "__fish_tgploy_using_subcommand doctor" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand doctor" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -l max-age -d 'With --check: the oldest acceptable last successful sync (`90m`, `2h`, `1d`)' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -l prometheus -d 'The metrics in the Prometheus text format, as `/metrics` serves them: on stdout, or into FILE for node_exporter\'s textfile collector (written beside it, then renamed over it, so the collector never reads half a file)' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -l json -d 'JSON on stdout instead of text'
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -l check -d 'For monitoring: exit 0 only if the last successful sync is younger than --max-age, no delivery is dead and no freshness watch (`expect_every`) is overdue; otherwise print one CRITICAL line per problem and exit 1'
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand status" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -s b -l bucket -d 'Only objects of this bucket' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -s p -l prefix -d 'Only keys starting with this prefix' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -l json -d 'JSON on stdout instead of a table (with every part\'s message and file id)'
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand files" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l etag -d 'Restore this version (ETag) of the key rather than the latest one' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l manifest -d 'Restore from a manifest file alone (no ledger needed): the disaster case' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -s b -l bucket -d 'With --all: only this bucket (repeatable)' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -s p -l prefix -d 'With --all: only keys starting with this prefix' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l as-of -d 'With --all: for each key, the newest version whose S3 last-modified time is at or before TIME (RFC 3339, like 2026-11-24T18:00:00Z, or a duration meaning that long ago, like 36h); keys that did not exist yet are left out. The way back from an overwrite: ransomware, a bad job' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l jobs -d 'Parts downloaded at once, across objects and within one large object' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -s o -l out -d 'Where to write: a file, a directory (the object\'s name inside it), or `-` for stdout [default: the object\'s name in the current directory]. With --all, the directory that gets DIR/BUCKET/KEY' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -s i -l identity -d 'An age identity file (`age-keygen` output) to decrypt an encrypted object (`name.age`, `name.age.part…`)' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l all -d 'Restore every delivered object (the latest delivered version of each key), or those of --bucket and --prefix, into --out DIR or back into S3 (--to-s3)'
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l to-s3 -d 'With --all: put each object back into the configured S3 endpoint (the new server) under its bucket and key, creating missing buckets; the ledger learns the restored versions as delivered, so the next `sync` sends nothing'
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l dry-run -d 'With --all: print what would be restored (objects, bytes, versions picked) and download nothing'
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l force -d 'Replace the output if it exists (with --all: objects that differ from the one to restore)'
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -l json -d 'Print a JSON summary (on stdout, or on stderr with `--out -`)'
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -l manifest -d 'The manifest (`NAME.tgploy.json`) to check the parts against' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -l pack -d 'A pack downloaded from the chat: check it against its index (and extract its objects with --out DIR)' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -s o -l out -d 'Where to write the joined object, or `-` for stdout; with --pack, the directory to extract the objects into' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -s i -l identity -d 'An age identity file (`age-keygen` output) to decrypt an encrypted object (`name.age`, `name.age.part…`)' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -l force -d 'Replace the output if it exists (with --all: objects that differ from the one to restore)'
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -l json -d 'Print a JSON summary (on stdout, or on stderr with `--out -`)'
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand join" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -s b -l bucket -d 'Only objects of this bucket' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -l sample -d 'How many delivered objects to check, picked at random; 0 checks them all' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -l jobs -d 'Parts downloaded at once, across objects' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -l json -d 'Print the report as JSON on stdout'
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and not __fish_seen_subcommand_from backup help" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and not __fish_seen_subcommand_from backup help" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and not __fish_seen_subcommand_from backup help" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and not __fish_seen_subcommand_from backup help" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and not __fish_seen_subcommand_from backup help" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and not __fish_seen_subcommand_from backup help" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and not __fish_seen_subcommand_from backup help" -f -a "backup" -d 'Send a consistent snapshot of the ledger (SQLite `VACUUM INTO`) to the admin chat'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and not __fish_seen_subcommand_from backup help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and __fish_seen_subcommand_from backup" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and __fish_seen_subcommand_from backup" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and __fish_seen_subcommand_from backup" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and __fish_seen_subcommand_from backup" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and __fish_seen_subcommand_from backup" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and __fish_seen_subcommand_from backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "backup" -d 'Send a consistent snapshot of the ledger (SQLite `VACUUM INTO`) to the admin chat'
complete -c tgploy -n "__fish_tgploy_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tgploy -n "__fish_tgploy_using_subcommand completions" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand completions" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand completions" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand completions" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand completions" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand completions" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand man" -l config -d 'Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml, else /etc/tgploy/config.toml; without one, settings come from the environment' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand man" -l database -d 'Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH' -r -F
complete -c tgploy -n "__fish_tgploy_using_subcommand man" -l otp -d 'A current second-factor code (or a recovery code) for operations that need one once a second factor is enrolled; without it, tgploy asks on a terminal' -r
complete -c tgploy -n "__fish_tgploy_using_subcommand man" -s v -l verbose -d 'More log output on stderr (-v info for every library, -vv debug)'
complete -c tgploy -n "__fish_tgploy_using_subcommand man" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c tgploy -n "__fish_tgploy_using_subcommand man" -s h -l help -d 'Print help'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "sync" -d 'Deliver every new object version of the enabled buckets'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "retry" -d 'Deliver failed deliveries whose next attempt is due'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "heartbeat" -d 'Send the daily summary to the admin chat'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "serve-webhook" -d 'Receive bucket notifications and deliver new objects within seconds'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "dashboard" -d 'Serve the web dashboard: what reached Telegram, at a glance, from a browser'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "probe" -d 'Check that a running `serve-webhook` or `dashboard` answers, for healthchecks'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "buckets" -d 'List, enable or disable buckets'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "setup" -d 'Guided first run: checks S3 and Telegram, writes a private config, enrols a second factor'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "doctor" -d 'Check an existing configuration: config file, ledger, S3, buckets, bot, chats, clock'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "status" -d 'Show buckets, delivered counts and bytes, the retry queue and the last sync'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "files" -d 'List delivered objects: when, in how many parts, message ids and SHA-256'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "restore" -d 'Rebuild a delivered object from Telegram, checked part by part'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "join" -d 'Join parts downloaded by hand from a Telegram client, or open a pack'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "verify" -d 'Restore drill: download the parts of delivered objects and check their hashes'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "ledger" -d 'The ledger itself: send a snapshot of it to the admin chat'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "man" -d 'Print the man page (roff)'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and not __fish_seen_subcommand_from sync retry heartbeat serve-webhook dashboard probe buckets setup doctor status files restore join verify ledger completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and __fish_seen_subcommand_from buckets" -f -a "list" -d 'List the buckets on the server and whether each is enabled'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and __fish_seen_subcommand_from buckets" -f -a "enable" -d 'Enable a bucket: its objects are delivered by the next `sync`'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and __fish_seen_subcommand_from buckets" -f -a "disable" -d 'Disable a bucket: `sync` no longer delivers its objects'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and __fish_seen_subcommand_from setup" -f -a "totp" -d 'Manage the second factor'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and __fish_seen_subcommand_from setup" -f -a "dashboard" -d 'Set the web dashboard\'s password (stored as an argon2id hash in the ledger)'
complete -c tgploy -n "__fish_tgploy_using_subcommand help; and __fish_seen_subcommand_from ledger" -f -a "backup" -d 'Send a consistent snapshot of the ledger (SQLite `VACUUM INTO`) to the admin chat'
