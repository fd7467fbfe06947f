# bash completion for meshctl and meshd (urfave/cli's protocol: the command
# itself lists what may come next when given --generate-bash-completion).
_hostmesh_complete() {
	local cur opts
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == "-"* ]]; then
		opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
	return 0
}
complete -o bashdefault -o default -F _hostmesh_complete meshctl meshd
