"""Export of trained networks and recorded activity to other tools.

- :mod:`bioplastic.export.brian2`: Brian2 rate and spiking versions of a
  trained LFRNN / PLRNN, and a standalone Brian2 script (SPEC 8); brian2 is
  the ``brian2`` extra.
- :mod:`bioplastic.export.nwb`: recorded activity as NWB (SPEC 7); pynwb is
  the ``nwb`` extra.

Importing this package imports no optional dependency: each back end imports
its library only when it runs.
"""
