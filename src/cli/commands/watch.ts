import { reconcileReplica } from '../../apply/reconcile.js';
import { InterruptedError } from '../../apply/interrupt.js';
import { formatDiagnostic } from '../../config/diagnostics.js';
import { loadSpec } from '../../config/load.js';
import type { Replica, Spec } from '../../config/spec.js';
import { AlertTracker, type Alert } from '../../watch/alerts.js';
import { postAlert, shownUrl } from '../../watch/webhooks.js';
import type { ApplyEvent } from '../../apply/events.js';
import { WatchController, type WatchEvent } from '../../watch/controller.js';
import { parseAddress, WatchMetrics } from '../../watch/metrics.js';
import { reloadSpec, watchFiles } from '../../watch/files.js';
import { EXIT, FILE_HELP, FILE_OPTION, fileArgs, OUTPUT_HELP, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { jsonEvents } from '../views/apply.js';
import { watchTextEvents } from '../views/watch.js';
import { parallelismOf, scriptDigests } from './engine.js';
import { cliSessionPool, TRUST_HELP, TRUST_OPTION } from './replica-target.js';
import { rmmVersion } from './version.js';

export const watchCommand: Command = {
  name: 'watch',
  summary: 'keep replicas converged: each synced when its policy says, the files read again when they change',
  usage: 'rmm watch -f FILE [--parallelism N] [--metrics HOST:PORT] [-o json]',
  details: [
    FILE_HELP,
    OUTPUT_HELP,
    '  --parallelism N         replicas synced at once (default 4; replicas of one origin one after another)',
    '  --metrics HOST:PORT     serve Prometheus metrics at /metrics and a status page at / (read-only)',
    TRUST_HELP,
    '',
    'Runs until stopped. Each replica is looked at (observed, planned, and synced when its schedule or RPO',
    'says, as rmm apply does), then again at its next scheduled time (or just past its RPO, or at half its',
    'RPO when it has no schedule), or after a backoff that doubles while it keeps failing (from its interval',
    'or 1 min, up to 30 min). A replica with neither schedule nor RPO is looked at every 10 min. An edit of',
    'the files is taken at once; an invalid one is reported (file:line) and the last valid configuration',
    'keeps running. A replica is never synced twice at once: its lock on the target also keeps a concurrent',
    'rmm apply out. Ctrl-C or SIGTERM ends each running sync as apply does (its step undone, the record',
    'interrupted, the lock let go), then exits 130 (143); a second one exits at once.',
    '',
    'Text output is a line per look, what each sync copied, and whatever failed; --verbose adds every step.',
    "A policy's alerts.webhooks are posted a JSON message when a replica falls behind its RPO, fails, or",
    'recovers (once each time).',
  ].join('\n'),
  options: { ...FILE_OPTION, ...TRUST_OPTION, parallelism: { type: 'string' }, metrics: { type: 'string' } },
  async run(ctx) {
    const args = fileArgs(ctx);
    if (args.length === 0) throw new UsageError('watch needs at least one -f FILE');
    if (args.includes('-')) throw new UsageError('watch reads its files again when they change: give files or folders, not - (stdin)');
    const parallelism = parallelismOf(ctx);
    const metricsAt = typeof ctx.values.metrics === 'string' ? ctx.values.metrics : undefined;
    if (metricsAt !== undefined) {
      try {
        parseAddress(metricsAt);
      } catch (err) {
        throw new UsageError(`--metrics: ${(err as Error).message}`);
      }
    }
    const { spec: first, warnings } = await loadSpec(args);
    if (ctx.output === 'text') for (const w of warnings) ctx.stderr.write(`${formatDiagnostic(w)}\n`);
    const trustNewHostKeys = ctx.values['trust-new-host-keys'] === true;
    const pool = cliSessionPool(ctx);
    const text = ctx.output === 'json' ? undefined : watchTextEvents(ctx.stdout, ctx.values.verbose === true);
    const show = text ?? jsonEvents(ctx.stdout, rmmVersion());
    const metrics = new WatchMetrics();
    const emit = (e: ApplyEvent | WatchEvent): void => {
      metrics.observe(e);
      show(e);
    };
    const served = metricsAt === undefined ? undefined : await metrics.serve(metricsAt).catch(async (err: unknown) => {
      await pool.closeAll();
      throw new UsageError(`--metrics: cannot listen on ${metricsAt}: ${(err as Error).message}`);
    });
    let spec: Spec = first;
    metrics.setReplicas(spec.replicas);
    let scripts = scriptDigests(spec);
    // Alerts: each replica's standing after each look, and between looks (an RPO passes by the clock).
    const tracker = new AlertTracker();
    const posting = new Set<Promise<void>>();
    const tell = (replica: Replica, alerts: readonly Alert[]): void => {
      for (const alert of alerts)
        for (const hook of replica.policy.alerts?.webhooks ?? []) {
          if (!hook.events.includes(alert.alert)) continue;
          const post = postAlert(hook.url, alert)
            .then((r) => emit({ type: 'watch.alert', replica: replica.name, alert: alert.alert, to: shownUrl(hook.url), delivered: r.delivered, ...(r.problem ? { problem: r.problem } : {}) }))
            .catch(() => {}) // what shows it (a closed output) must not end the loop
            .finally(() => posting.delete(post));
          posting.add(post);
        }
    };
    const ticker = setInterval(() => {
      for (const replica of spec.replicas) tell(replica, tracker.tick([replica], Date.now()));
    }, 1000);
    const controller = new WatchController({
      parallelism,
      emit: (e) => {
        emit(e);
        const replica = e.type === 'watch.result' ? spec.replicas.find((r) => r.name === e.replica) : undefined;
        if (e.type === 'watch.result' && replica) tell(replica, tracker.look(replica, { outcome: e.outcome, ...(e.asOf ? { asOf: e.asOf } : {}), ...(e.error ? { error: e.error } : {}) }, Date.now()));
      },
      reconcile: (replica, signal) => reconcileReplica(replica, { pool, trustNewHostKeys, emit, scripts, signal }, { now: new Date() }),
    });
    emit({ type: 'watch.start', replicas: spec.replicas.map((r) => r.name), files: args, ...(served ? { metrics: served.url } : {}) });
    controller.setSpec(spec);
    // One reload at a time, the last edit winning.
    let reloading = Promise.resolve();
    let stopping = false;
    const files = watchFiles(args, () => {
      reloading = reloading.then(async () => {
        if (stopping) return;
        const next = await reloadSpec(args).catch((err: unknown) => ({ problems: [`the files could not be read: ${(err as Error).message}`] }));
        if (stopping) return;
        if ('problems' in next) {
          emit({ type: 'watch.invalid', message: `the files changed but are not valid (${next.problems.length} problem${next.problems.length === 1 ? '' : 's'}): still running the last valid configuration`, problems: next.problems });
          return;
        }
        spec = next.spec;
        scripts = scriptDigests(spec);
        tracker.keep(new Set(spec.replicas.map((r) => r.name)));
        metrics.setReplicas(spec.replicas);
        emit({ type: 'watch.reload', replicas: spec.replicas.map((r) => r.name), ...controller.setSpec(spec) });
      });
    });
    let signal: NodeJS.Signals | undefined;
    // A second signal: out at once; the hosts let go of what rmm held within the heartbeat timeout.
    const again = (name: NodeJS.Signals): never => process.exit(name === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted);
    await new Promise<void>((resolve) => {
      const onSignal = (name: NodeJS.Signals): void => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.on('SIGINT', again);
        process.on('SIGTERM', again);
        signal = name;
        resolve();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
    // Nothing new starts (no sync, no reload) before anything is let go; what runs is undone.
    stopping = true;
    const stopped = controller.stop(new InterruptedError(signal!));
    try {
      text?.close();
      ctx.stderr.write(`\nrmm watch: ${signal}: stopping: undoing each running step (${signal} again exits at once)\n`);
      await stopped;
      await Promise.all(posting); // alerts on their way are delivered (each bounded) before rmm ends
      emit({ type: 'watch.stop', reason: signal! });
    } finally {
      clearInterval(ticker);
      await Promise.allSettled([files.close(), reloading, served?.close(), pool.closeAll()]);
      process.off('SIGINT', again);
      process.off('SIGTERM', again);
    }
    return signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
  },
};
