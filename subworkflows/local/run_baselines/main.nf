/*
    The baseline refiners chosen with --refiners, each on the cleaned decoy, so the report can
    put EGR side by side with them. A refiner that is not installed in its container records
    a skip (JSON with its reason) instead of a model.
*/

include { OPENMM_RELAX        } from '../../../modules/local/openmm_relax'
include { MODELLER_REFINE     } from '../../../modules/local/modeller_refine'
include { GALAXYREFINECOMPLEX } from '../../../modules/local/galaxyrefinecomplex'
include { HADDOCK_REFINE      } from '../../../modules/local/haddock_refine'

workflow RUN_BASELINES {

    take:
    ch_clean // channel: [ val(meta), path(<id>_clean.pdb) ]
    refiners // list   : refiner names from --refiners

    main:
    ch_models = channel.empty()
    ch_json   = channel.empty()

    if ('openmm' in refiners) {
        OPENMM_RELAX(ch_clean)
        ch_models = ch_models.mix(OPENMM_RELAX.out.pdb.map { meta, pdb -> [ meta + [ model: 'openmm' ], pdb ] })
        ch_json   = ch_json.mix(OPENMM_RELAX.out.json)
    }
    if ('modeller' in refiners) {
        MODELLER_REFINE(ch_clean)
        ch_models = ch_models.mix(MODELLER_REFINE.out.pdb.map { meta, pdb -> [ meta + [ model: 'modeller' ], pdb ] })
        ch_json   = ch_json.mix(MODELLER_REFINE.out.json)
    }
    if ('galaxy' in refiners) {
        GALAXYREFINECOMPLEX(ch_clean)
        ch_models = ch_models.mix(GALAXYREFINECOMPLEX.out.pdb.map { meta, pdb -> [ meta + [ model: 'galaxy' ], pdb ] })
        ch_json   = ch_json.mix(GALAXYREFINECOMPLEX.out.json)
    }
    // HADDOCK3's protocols are refiners of their own (one task each), so both can be compared in one run
    ch_haddock = channel.fromList(refiners.findAll { name -> name in ['haddock_emref', 'haddock_mdref'] })
    if ('haddock_emref' in refiners || 'haddock_mdref' in refiners) {
        HADDOCK_REFINE(ch_clean.combine(ch_haddock))
        ch_models = ch_models.mix(HADDOCK_REFINE.out.pdb.map { meta, method, pdb -> [ meta + [ model: method ], pdb ] })
        ch_json   = ch_json.mix(HADDOCK_REFINE.out.json)
    }

    emit:
    models = ch_models // channel: [ val(meta + model), path(<id>_<refiner>.pdb) ]
    json   = ch_json   // channel: [ val(meta), path(<id>_<refiner>.json) ]
}
