# fish completion for qmpsh.  Installed by pip as
# share/fish/vendor_completions.d/qmpsh.fish; or save `qmpsh --completions fish`
# as ~/.config/fish/completions/qmpsh.fish.
# Socket paths come from `qmpsh --list-sockets`, which looks but never connects.

function __qmpsh_sockets --description 'QMP sockets found by qmpsh --list-sockets'
    set -l cmd (commandline -opc)[1]
    command $cmd --list-sockets 2>/dev/null
end

function __qmpsh_no_address --description 'true while the address may still be typed'
    not contains -- -- (commandline -opc)
    and not contains -- --launch (commandline -opc)
end

complete -c qmpsh -n __qmpsh_no_address -a '(__qmpsh_sockets)' -d 'QMP socket'

complete -c qmpsh -s h -l help -d 'Show help and exit'
complete -c qmpsh -l version -d 'Show the version and exit'
complete -c qmpsh -l completions -x -a 'bash zsh fish' -d 'Print the completion script for SHELL'
complete -c qmpsh -l list-sockets -d 'Print the unix sockets found on this machine'
complete -c qmpsh -l launch -d 'Start a throwaway QEMU and connect to it'
complete -c qmpsh -l wait -x -d 'Keep retrying until the socket accepts (SECONDS)'
complete -c qmpsh -s c -l command -x -d 'Run LINE and exit'
complete -c qmpsh -s f -l file -r -F -d 'Run the lines of FILE and exit'
complete -c qmpsh -l vminfo -d 'Print an overview of the VM and exit'
complete -c qmpsh -l format -x -a 'pretty json raw' -d 'Reply format'
complete -c qmpsh -s p -l pretty -d 'Same as --format pretty'
complete -c qmpsh -l exit-on-error -d 'Stop a script at the first failing line'
complete -c qmpsh -l events -F -d 'Write events as JSON lines to stderr, or to FILE'
complete -c qmpsh -l events-filter -x -d 'Only show events matching SPEC'
complete -c qmpsh -l wait-event -x -d 'Wait for EVENT and print it'
complete -c qmpsh -l timeout -x -d 'Reply and --wait-event timeout (SECONDS)'
complete -c qmpsh -s v -l verbose -d 'Echo each request as sent'
complete -c qmpsh -s H -l hmp -d 'Every line is a human monitor (HMP) command'
complete -c qmpsh -s N -l skip-negotiation -d 'Do not send qmp_capabilities'
complete -c qmpsh -l ga -d 'The address is a qemu-guest-agent socket'
complete -c qmpsh -s l -l logfile -r -F -d 'Append every message as JSON lines to FILE'
complete -c qmpsh -l transcript -r -F -d 'Append every message and event to FILE'
complete -c qmpsh -l no-validate -d 'Do not check requests against the schema'
complete -c qmpsh -s y -l yes -d 'Do not ask before quit, system_reset, stop'
complete -c qmpsh -s q -l quiet -d 'No banner and no warnings'
complete -c qmpsh -l no-pane -d 'Print events above the prompt, not in a pane'
complete -c qmpsh -l no-pager -d 'Never page long replies'
complete -c qmpsh -l color -x -a 'auto always never' -d 'Colour output'
complete -c qmpsh -l config -r -F -d 'Read settings from PATH'
complete -c qmpsh -l reconnect -d 'Reconnect when the connection is lost'
