/*
 * group.h: the group stage — region-wide rules over the alerts of the shards.
 * Owns: per (group rule, region) the set of plants with a live alert of the
 * member rule at or above its level, and the group rule's own alert state.
 * Must never: run in a shard worker (it sees every shard's alerts), or apply
 * member changes out of event-time order.
 * DESIGN: runs in the output thread. Member alerts arrive from the workers in
 * no particular order across shards, so they wait in a buffer until every
 * worker has passed their time (each worker reports its progress: no later
 * alert of it can be earlier), then apply in (at, plant, device) order. The
 * count of a region changes at the `at` of the member alerts; each change is a
 * sample of the group rule (value = count), with the same grade, `for` and
 * clear semantics as a threshold rule. Group alerts have a region as subject,
 * no plant, device or value, and list the counted plants in `because`.
 */
#ifndef VG_GROUP_H
#define VG_GROUP_H

#include "engine/alert.h"
#include "engine/error.h"

struct vg_group_stage;

/** @returns NULL if the rule set has no group rules. Borrows @p rs. */
struct vg_group_stage *vg_group_create(const struct vg_ruleset *rs);
void vg_group_destroy(struct vg_group_stage *gs);

/** @brief Keep @p a if a group rule counts its rule. @thread output */
void vg_group_offer(struct vg_group_stage *gs, const struct vg_alert *a);

/**
 * @brief Apply the buffered member changes with at < @p safe (or all, with
 * VG_TS_MAX), emitting group alerts through @p emit. @thread output
 */
void vg_group_advance(struct vg_group_stage *gs, vg_ts safe,
                      void (*emit)(void *ctx, const struct vg_alert *a), void *ctx);


/** The plant name under which the group stage's state record is stored. */
#define VG_GROUP_RECORD "~group"

/**
 * @brief The group stage's whole state (regions, members counted, member
 * alerts waiting for the workers' progress) as one record, tagged with a
 * fingerprint of the rule set. @p *out is malloc'd (caller frees).
 * @returns 0 or VG_ENOMEM. @thread output
 */
int vg_group_export(const struct vg_group_stage *gs, char **out, size_t *len);

/**
 * @brief Restore a record made by vg_group_export. A record of another rule
 * set (any rule changed) is ignored: group counts then start afresh.
 * @returns 0, or VG_EINVAL for a damaged record. @thread before the output thread starts
 */
int vg_group_import(struct vg_group_stage *gs, const void *data, size_t len, struct vg_error *err);

#endif
