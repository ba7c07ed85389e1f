"""
The stock Real-Time applications (``../shared/spec/pbx-apps.md``): each
module has a C{run(task)} generator that L{cgpro.pbx.host} runs with
C{inlineCallbacks}, and the Router reaches it as C{name{params}#account}.
"""
