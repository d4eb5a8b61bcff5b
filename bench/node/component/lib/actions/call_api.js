'use strict';

const axios = require('axios');

// One API call per message with axios, as elastic.io's own REST component makes them.
exports.process = async function process(msg, cfg) {
    const answer = await axios.get(`${cfg.apiUrl}/items/${msg.body.seq}`, {
        headers: { Authorization: `Bearer ${cfg.accessToken}` },
        timeout: 30000,
    });
    return { body: { ...msg.body, answer: answer.data }, headers: {} };
};
