# bash completion for preemptd: generated from the command definitions (src/commands/program.ts) by `npm run generate`; do not edit
_preemptd() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local command='' flags values i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      run|check|health|simulate|simulator|wait|restore|snapshots) command=${COMP_WORDS[i]}; break ;;
    esac
  done
  COMPREPLY=()
  case $command:$prev in
    run:--provider) values='auto aws gcp azure alibaba tencent kubernetes' ;;
    run:--log-level) values='trace debug info warn error fatal silent' ;;
    check:--provider) values='auto aws gcp azure alibaba tencent kubernetes' ;;
    check:--log-level) values='trace debug info warn error fatal silent' ;;
    health:--provider) values='auto aws gcp azure alibaba tencent kubernetes' ;;
    health:--log-level) values='trace debug info warn error fatal silent' ;;
    simulate:--provider) values='auto aws gcp azure alibaba tencent kubernetes' ;;
    simulate:--log-level) values='trace debug info warn error fatal silent' ;;
    simulate:--kind) values='terminate stop hibernate rebalance maintenance preempt reboot redeploy freeze shutdown' ;;
    simulator:--provider) values='aws gcp azure alibaba tencent' ;;
    simulator:--kind) values='terminate stop hibernate rebalance maintenance preempt reboot redeploy freeze' ;;
    simulator:--action) values='terminate stop hibernate autoscaling migrate upcoming' ;;
    simulator:--log-level) values='trace debug info warn error fatal silent' ;;
    simulator:--log-format) values='json text' ;;
    wait:--provider) values='auto aws gcp azure alibaba tencent kubernetes' ;;
    wait:--log-level) values='trace debug info warn error fatal silent' ;;
    wait:--kind) values='terminate stop hibernate rebalance maintenance preempt reboot redeploy freeze shutdown' ;;
    restore:--log-level) values='trace debug info warn error fatal silent' ;;
    restore:--log-format) values='json text' ;;
    snapshots:--log-level) values='trace debug info warn error fatal silent' ;;
    snapshots:--log-format) values='json text' ;;
    run:--config|run:-c|run:--metadata-url|run:--poll-interval|run:--state-dir|run:--set) return ;;
    check:--config|check:-c|check:--metadata-url|check:--poll-interval|check:--state-dir|check:--set|check:--as-user) return ;;
    health:--config|health:-c|health:--metadata-url|health:--poll-interval|health:--state-dir|health:--set) return ;;
    simulate:--config|simulate:-c|simulate:--metadata-url|simulate:--poll-interval|simulate:--state-dir|simulate:--set|simulate:--deadline) return ;;
    simulator:--host|simulator:--port|simulator:--notice-after|simulator:--lead|simulator:--faults) return ;;
    wait:--config|wait:-c|wait:--metadata-url|wait:--poll-interval|wait:--state-dir|wait:--set|wait:--agent|wait:--timeout) return ;;
    restore:--from|restore:--latest|restore:--to|restore:--endpoint|restore:--region|restore:--concurrency) return ;;
    snapshots:--endpoint|snapshots:--region|snapshots:--keep-last|snapshots:--keep-within|snapshots:--grace) return ;;
  esac
  if [[ -n $values ]]; then
    COMPREPLY=($(compgen -W "$values" -- "$cur"))
    return
  fi
  case $command in
    '') flags='--help -h --version -v'
      if [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -W 'run check health simulate simulator wait restore snapshots' -- "$cur"))
        return
      fi ;;
    run) flags='--config -c --provider --metadata-url --poll-interval --state-dir --log-level --set --help -h --version -v' ;;
    check) flags='--config -c --provider --metadata-url --poll-interval --state-dir --log-level --set --json --as-user --help -h --version -v' ;;
    health) flags='--config -c --provider --metadata-url --poll-interval --state-dir --log-level --set --help -h --version -v' ;;
    simulate) flags='--config -c --provider --metadata-url --poll-interval --state-dir --log-level --set --kind --deadline --advisory --dry-run --run --json --help -h --version -v' ;;
    simulator) flags='--provider --host --port --notice-after --kind --action --lead --faults --log-level --log-format --help -h --version -v' ;;
    wait) flags='--config -c --provider --metadata-url --poll-interval --state-dir --log-level --set --agent --timeout --kind --help -h --version -v' ;;
    restore) flags='--from --latest --to --endpoint --force-path-style --region --concurrency --keep-setuid --if-newer --json --log-level --log-format --help -h --version -v' ;;
    snapshots) flags='--endpoint --force-path-style --region --json --keep-last --keep-within --grace --apply --log-level --log-format --help -h --version -v' ;;
  esac
  COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}
complete -o default -F _preemptd preemptd
